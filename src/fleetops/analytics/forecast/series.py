"""Read a `timestamp,value` series and put it on a regular step, saying what that took.

The rules, in the order they apply:

- A timestamp is ISO 8601 (`2014-04-10 07:15:00`, `T` or an offset allowed; naive means UTC) or
  epoch seconds (`1397114100`, `386640.5`). An optional first line `timestamp,value` is a header.
- Rows out of time order are an error naming the line: a forecast of a re-sorted file would hide
  a broken export, so nothing is reordered.
- Duplicate timestamps: the last row wins (a re-sent sample corrects the earlier one); how many
  were replaced is reported.
- Resampling: points fall into bins of `step` seconds aligned to multiples of the step since the
  epoch; a bin's value is the mean of its points.
- Gaps: a run of empty bins no longer than `max_gap` seconds is interpolated linearly between its
  neighbours; a longer run stays missing (NaN). The model carries its state across a missing bin
  without learning from it, and backtests do not score one.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fleetops.analytics.forecast.exceptions import ForecastInputError

EPOCH = re.compile(r"^\d+(\.\d+)?$")
DURATION = re.compile(r"^(\d+)([smhdw]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
NICE_STEPS = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400)


@dataclass(frozen=True)
class Points:
    """Raw points as read: epoch seconds and values, in time order, duplicates resolved."""

    stamps: list[float]
    values: list[float]
    duplicates: int


@dataclass(frozen=True)
class RegularSeries:
    """A series on a regular step: `values[k]` is the bin starting at `start + k * step`."""

    start: float
    step: int
    values: npt.NDArray[np.float64]
    interpolated: int
    missing: int
    duplicates: int

    def stamp(self, index: float) -> datetime:
        """The UTC time of bin `index` (fractional for a crossing between bins)."""
        return datetime.fromtimestamp(self.start + index * self.step, tz=UTC)


def parse_duration(text: str) -> int:
    """Parse `90`, `90s`, `15m`, `6h`, `7d` or `2w` into seconds (positive)."""
    match = DURATION.match(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"bad duration {text!r}; expected e.g. 900, 15m, 6h, 7d")
    return int(match.group(1)) * UNITS[match.group(2)]


def label_seconds(seconds: int) -> str:
    """Write a duration in its largest whole unit: `86400` is `1d`, `5400` is `90m`."""
    for unit, name in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds % unit == 0:
            return f"{seconds // unit}{name}"
    return f"{seconds}s"


def parse_timestamp(text: str) -> float:
    """Parse ISO 8601 (naive is UTC) or epoch seconds into epoch seconds."""
    text = text.strip()
    if EPOCH.match(text):
        return float(text)
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def read_points(path: Path) -> Points:
    """Read `path`, refusing bad rows and out-of-order rows by line; the last duplicate wins."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ForecastInputError(exc.strerror or str(exc), where=str(path)) from exc
    stamps: list[float] = []
    values: list[float] = []
    duplicates = 0
    with handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if line == 1 and [f.strip().lower() for f in row] == ["timestamp", "value"]:
                continue
            stamp, value = _parse_row(row, where=f"{path}:{line}")
            if stamps and stamp < stamps[-1]:
                raise ForecastInputError(
                    f"timestamp {row[0].strip()!r} is before the previous row's; "
                    "rows must be in time order",
                    where=f"{path}:{line}",
                )
            if stamps and stamp == stamps[-1]:
                values[-1] = value
                duplicates += 1
                continue
            stamps.append(stamp)
            values.append(value)
    if not values:
        raise ForecastInputError("no data rows", where=str(path))
    return Points(stamps=stamps, values=values, duplicates=duplicates)


def _parse_row(row: list[str], *, where: str) -> tuple[float, float]:
    if len(row) != 2:
        raise ForecastInputError(
            f"expected 2 fields (timestamp,value), found {len(row)}", where=where
        )
    try:
        stamp = parse_timestamp(row[0])
    except (ValueError, OverflowError, OSError):
        raise ForecastInputError(f"bad timestamp {row[0]!r}", where=where) from None
    try:
        value = float(row[1])
    except ValueError:
        raise ForecastInputError(f"bad value {row[1]!r}", where=where) from None
    if not math.isfinite(value):
        raise ForecastInputError(f"value {row[1]!r} is not a finite number", where=where)
    return stamp, value


def auto_step(points: Points) -> int:
    """The smallest nice step (1 min .. 1 day) at least the median spacing of the points."""
    if len(points.stamps) < 2:
        return NICE_STEPS[0]
    spacing = float(np.median(np.diff(np.asarray(points.stamps))))
    return next((s for s in NICE_STEPS if s >= spacing - 1e-9), NICE_STEPS[-1])


def resample(points: Points, *, step: int, max_gap: int) -> RegularSeries:
    """Put `points` on bins of `step` seconds; interpolate gaps up to `max_gap` seconds."""
    stamps = np.asarray(points.stamps)
    start = math.floor(stamps[0] / step) * step
    bins = ((stamps - start) // step).astype(np.int64)
    sums = np.bincount(bins, weights=np.asarray(points.values))
    counts = np.bincount(bins)
    values = np.full(len(counts), np.nan)
    filled = counts > 0
    values[filled] = sums[filled] / counts[filled]
    interpolated = _fill_short_gaps(values, max_bins=max_gap // step)
    missing = int(np.isnan(values).sum())
    return RegularSeries(
        start=float(start),
        step=step,
        values=values,
        interpolated=interpolated,
        missing=missing,
        duplicates=points.duplicates,
    )


def _fill_short_gaps(values: npt.NDArray[np.float64], *, max_bins: int) -> int:
    known = np.flatnonzero(~np.isnan(values))
    filled = 0
    for at in np.flatnonzero(np.diff(known) > 1).tolist():
        left, right = int(known[at]), int(known[at + 1])
        width = right - left - 1
        if width <= max_bins:
            inner = np.arange(1, width + 1) / (width + 1)
            values[left + 1 : right] = values[left] + inner * (values[right] - values[left])
            filled += width
    return filled
