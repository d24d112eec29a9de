"""Read a `timestamp,value` series strictly: every bad row is an error naming its file and line.

Rows must be in time order; out-of-order rows are refused (never silently re-sorted, since a
streaming detector sees points in arrival order and a sort would change what it saw). Duplicate
timestamps are kept as separate, consecutive points, and gaps are not filled: the detectors score
points in order and do not assume a regular step.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fleetops.analytics.anomaly.exceptions import SeriesError


@dataclass(frozen=True)
class Series:
    """One metric series as read, in file order."""

    name: str
    timestamps: list[datetime]
    values: list[float]


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (`2014-04-10 07:15:00`, `T` separator or fraction allowed)."""
    return datetime.fromisoformat(text.strip())


def read_series(path: Path, *, name: str | None = None) -> Series:
    """Read `path` (header `timestamp,value`), refusing bad values and out-of-order rows."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise SeriesError(exc.strerror or str(exc), where=str(path)) from exc
    with handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise SeriesError("expected the header `timestamp,value`", where=f"{path}:1")
        stamps: list[datetime] = []
        values: list[float] = []
        for line, row in enumerate(rows, start=2):
            stamp, value = _parse_row(row, where=f"{path}:{line}")
            if stamps and stamp < stamps[-1]:
                raise SeriesError(
                    f"timestamp {stamp} is before the previous row's {stamps[-1]}; "
                    "rows must be in time order",
                    where=f"{path}:{line}",
                )
            stamps.append(stamp)
            values.append(value)
    if not values:
        raise SeriesError("no rows after the header", where=str(path))
    return Series(name=name or path.name, timestamps=stamps, values=values)


def _parse_row(row: list[str], *, where: str) -> tuple[datetime, float]:
    if len(row) < 2:
        raise SeriesError(f"expected 2 fields, found {len(row)}", where=where)
    try:
        stamp = parse_timestamp(row[0])
    except ValueError:
        raise SeriesError(f"bad timestamp {row[0]!r}", where=where) from None
    try:
        value = float(row[1])
    except ValueError:
        raise SeriesError(f"bad value {row[1]!r}", where=where) from None
    if not math.isfinite(value):
        raise SeriesError(f"value {row[1]!r} is not a finite number", where=where)
    return stamp, value
