"""Days until full: when the forecast, and each edge of its interval, first reaches a capacity.

The median crossing is where the point forecast reaches the capacity; the interval runs from
where the upper band reaches it (the earliest it plausibly fills) to where the lower band does
(the latest). Each crossing is interpolated linearly between steps, starting from the last
observation (step 0), and is "not within the horizon" (None) when the curve stays below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetops.analytics.forecast.model import Array, Forecast

DAY = 86400.0


@dataclass(frozen=True)
class DaysUntilFull:
    """Days from the last observation until full: median, earliest and latest; None = later."""

    capacity: float
    level: float
    median: float | None
    earliest: float | None
    latest: float | None


def crossing(last: float, path: Array, capacity: float) -> float | None:
    """Steps (fractional) until `path`, which continues from `last`, first reaches `capacity`."""
    if last >= capacity:
        return 0.0
    above = np.flatnonzero(path >= capacity)
    if not len(above):
        return None
    h = int(above[0]) + 1
    before = last if h == 1 else float(path[h - 2])
    return h - 1 + (capacity - before) / (float(path[h - 1]) - before)


def days_until_full(
    last: float, forecast: Forecast, *, capacity: float, step: int, level: float = 0.95
) -> DaysUntilFull:
    """When `forecast` (after an observed `last`) reaches `capacity`, with its `level` interval."""
    lower, upper = forecast.band(level)

    def days(path: Array) -> float | None:
        steps = crossing(last, path, capacity)
        return None if steps is None else steps * step / DAY

    return DaysUntilFull(
        capacity=capacity,
        level=level,
        median=days(forecast.mean),
        earliest=days(upper),
        latest=days(lower),
    )
