"""A NAB-layout corpus: series under `data/`, windows from a labels file, costs from profiles.

Every series under the data directory must have an entry in the labels file (an unlabelled file
would be scored as if it had no anomaly); labelled files missing from the directory are skipped,
so a subset of the corpus scores on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetops.analytics.anomaly.exceptions import SeriesError
from fleetops.analytics.anomaly.nab import Costs, LabelledFile, window_rows
from fleetops.analytics.anomaly.series import Series, parse_timestamp, read_series

PROFILE_NAMES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")

# The benchmark's published cost matrices, used when no profiles file is given.
DEFAULT_PROFILES = {
    "standard": Costs(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Costs(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Costs(tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True)
class CorpusFile:
    """A series with its windows as row ranges."""

    series: Series
    labelled: LabelledFile


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SeriesError(exc.strerror or str(exc), where=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise SeriesError(f"invalid JSON: {exc.msg}", where=f"{path}:{exc.lineno}") from exc


def load_profiles(path: Path | None) -> dict[str, Costs]:
    """Read the three profiles' cost matrices (`CostMatrix` with tp/fp/fn weights)."""
    if path is None:
        return dict(DEFAULT_PROFILES)
    raw = _load_json(path)
    profiles: dict[str, Costs] = {}
    for name in PROFILE_NAMES:
        try:
            matrix = raw[name]["CostMatrix"]
            costs = Costs(
                tp=float(matrix["tpWeight"]),
                fp=float(matrix["fpWeight"]),
                fn=float(matrix["fnWeight"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SeriesError(f"profile {name!r}: missing or bad {exc}", where=str(path)) from None
        if min(costs.tp, costs.fp, costs.fn) < 0 or costs.tp == 0:
            raise SeriesError(f"profile {name!r}: weights must be >= 0, tp > 0", where=str(path))
        profiles[name] = costs
    return profiles


def load_windows(path: Path) -> dict[str, list[tuple[Any, Any]]]:
    """Read the labels file: file name -> list of [start, end] timestamps."""
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise SeriesError("expected an object of file name -> windows", where=str(path))
    windows: dict[str, list[tuple[Any, Any]]] = {}
    for name, spans in raw.items():
        try:
            windows[name] = [(parse_timestamp(a), parse_timestamp(b)) for a, b in spans]
        except (TypeError, ValueError):
            raise SeriesError(
                f"{name}: windows must be [start, end] pairs", where=str(path)
            ) from None
    return windows


def load_corpus(data: Path, labels: Path) -> list[CorpusFile]:
    """Read every series under `data` with its windows, sorted by name."""
    if not data.is_dir():
        raise SeriesError("not a directory", where=str(data))
    windows = load_windows(labels)
    files: list[CorpusFile] = []
    for path in sorted(data.rglob("*.csv")):
        name = path.relative_to(data).as_posix()
        if name not in windows:
            raise SeriesError(f"{name} has no entry in the labels file", where=str(labels))
        series = read_series(path, name=name)
        files.append(CorpusFile(series, _label(series, windows[name], labels)))
    if not files:
        raise SeriesError("no .csv series found", where=str(data))
    return files


def _label(series: Series, spans: list[tuple[Any, Any]], labels: Path) -> LabelledFile:
    rows = window_rows(series.timestamps, sorted(spans))
    kept: list[tuple[int, int]] = []
    for (start, end), span in zip(sorted(spans), rows, strict=True):
        if span is None:
            raise SeriesError(
                f"{series.name}: window {start}..{end} has no rows", where=str(labels)
            )
        if kept and span[0] <= kept[-1][1]:
            raise SeriesError(f"{series.name}: window {start}..{end} overlaps", where=str(labels))
        kept.append(span)
    return LabelledFile(series.name, len(series.values), tuple(kept))
