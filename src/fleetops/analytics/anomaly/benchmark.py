"""Run the benchmark: a detector's (or a results directory's) scores through the NAB scorer.

The report holds each profile's normalised score at the listed normalisation, the threshold the
sweep chose, and the counts behind it, so a reader can check 0 for the null detector and 100 for
the perfect one with the same code path that scores fleetops' detector.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetops.analytics.anomaly.corpus import CorpusFile, load_corpus, load_profiles
from fleetops.analytics.anomaly.detectors import score_series
from fleetops.analytics.anomaly.exceptions import SeriesError
from fleetops.analytics.anomaly.nab import normalise, sweep
from fleetops.analytics.anomaly.series import parse_timestamp

DETECTORS = ("fleetops", "null", "perfect")


def detector_scores(file: CorpusFile, detector: str) -> list[float]:
    """One built-in detector's scores for a file (`perfect` reads the labels, as NAB's does)."""
    if detector == "fleetops":
        return score_series(file.series.values)
    scores = [0.0] * file.labelled.length
    if detector == "perfect":
        for start, _ in file.labelled.windows:
            scores[start] = 1.0
    elif detector != "null":
        raise ValueError(f"unknown detector {detector!r}; expected one of {', '.join(DETECTORS)}")
    return scores


def result_scores(file: CorpusFile, results: Path) -> list[float]:
    """Read a NAB result CSV for `file`: `<category>/[<detector>_]<name>.csv` with `anomaly_score`.

    Its rows must be the series' rows, timestamp for timestamp; the first mismatch is named."""
    folder, name = results / Path(file.series.name).parent, Path(file.series.name).name
    found = sorted(folder.glob(f"*_{name}")) + sorted(folder.glob(name))
    if not found:
        raise SeriesError(f"no result file for {file.series.name}", where=str(folder))
    path = found[0]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"timestamp", "anomaly_score"} <= set(reader.fieldnames):
            raise SeriesError("expected `timestamp` and `anomaly_score` columns", where=f"{path}:1")
        scores = [_result_row(row, path, line, file) for line, row in enumerate(reader, start=2)]
    if len(scores) != file.labelled.length:
        raise SeriesError(
            f"{len(scores)} rows, the series has {file.labelled.length}", where=str(path)
        )
    return scores


def _result_row(row: dict[str, str], path: Path, line: int, file: CorpusFile) -> float:
    where = f"{path}:{line}"
    index = line - 2
    try:
        stamp, score = parse_timestamp(row["timestamp"]), float(row["anomaly_score"])
    except (TypeError, ValueError):
        raise SeriesError("bad timestamp or anomaly_score", where=where) from None
    if index >= file.labelled.length or stamp != file.series.timestamps[index]:
        raise SeriesError(f"timestamp {stamp} is not the series' row {line}", where=where)
    if not math.isfinite(score):
        raise SeriesError(f"anomaly_score {row['anomaly_score']!r} is not finite", where=where)
    return score


def run_benchmark(
    data: Path,
    labels: Path,
    *,
    profiles: Path | None = None,
    detector: str = "fleetops",
    results: Path | None = None,
) -> dict[str, Any]:
    """Score every series under `data` and report each profile's normalised score."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; expected one of {', '.join(DETECTORS)}")
    costs = load_profiles(profiles)
    corpus = load_corpus(data, labels)
    scores = [
        result_scores(f, results) if results else detector_scores(f, detector) for f in corpus
    ]
    return _report(corpus, scores, costs, "results" if results else detector)


def _report(
    corpus: Sequence[CorpusFile], scores: Sequence[Sequence[float]], costs: Any, source: str
) -> dict[str, Any]:
    files = [f.labelled for f in corpus]
    windows = sum(len(f.windows) for f in files)
    report: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name, matrix in costs.items():
        best = sweep(files, scores, matrix)
        report[name] = round(normalise(best.outcome.score, windows, matrix), 2)
        details[name] = {
            "threshold": best.threshold,
            "raw": round(best.outcome.score, 4),
            "tp": best.outcome.tp,
            "fp": best.outcome.fp,
            "fn": best.outcome.fn,
        }
    report["details"] = {
        "detector": source,
        "files": len(files),
        "rows": sum(f.length for f in files),
        "windows": windows,
        "profiles": details,
    }
    return report
