"""Rolling-origin backtest: the model against a seasonal-naive and a linear-trend baseline.

The last `folds * horizon` steps of each series become `folds` consecutive test windows; each
forecaster is fitted on everything before a window's origin and forecasts the window. Errors
are pooled over folds and series per lead-time bucket: MAE, MAPE (over actuals that are not 0)
and the share of actuals inside the 80 % and 95 % bands. Missing actuals are not scored.

Baselines' bands: seasonal naive repeats the value one season back, its error variance
growing with the number of seasons ahead (`sigma^2 (k + 1)`); the linear trend is least
squares over the training window with the regression's prediction interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fleetops.analytics.forecast.exceptions import ForecastInputError
from fleetops.analytics.forecast.model import Array, Forecast, fit
from fleetops.analytics.forecast.series import label_seconds

Forecaster = Callable[[Array, int, int], Forecast]
BUCKETS = ((3600, "<=1h"), (6 * 3600, "<=6h"), (86400, "<=1d"), (3 * 86400, "<=3d"))
BUCKETS_LONG = ((7 * 86400, "<=7d"), (30 * 86400, "<=30d"))
LEVELS = (0.8, 0.95)


def ets(train: Array, season: int, horizon: int) -> Forecast:
    """The model, ETS(A,Ad,A), fitted on `train`."""
    return fit(train, season=season).forecast(horizon)


def seasonal_naive(train: Array, season: int, horizon: int) -> Forecast:
    """Repeat the last known value one season back (the last value if no season)."""
    filled = _forward_fill(train)
    lagged = filled[season:] - filled[:-season]
    sigma = float(np.sqrt(np.nanmean(lagged**2))) if len(lagged) else 0.0
    steps = np.arange(1, horizon + 1)
    seasons_ahead = (steps - 1) // season
    mean = filled[len(filled) - season + (steps - 1) % season]
    return Forecast(mean=mean, sd=sigma * np.sqrt(seasons_ahead + 1.0))


def linear_trend(train: Array, season: int, horizon: int) -> Forecast:
    """Least-squares line through the training window, extended."""
    x = np.flatnonzero(~np.isnan(train)).astype(np.float64)
    y = train[~np.isnan(train)]
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    sigma = float(np.sqrt(residual @ residual / max(len(x) - 2, 1)))
    ahead = len(train) - 1 + np.arange(1, horizon + 1, dtype=np.float64)
    spread = 1 + 1 / len(x) + (ahead - x.mean()) ** 2 / float(((x - x.mean()) ** 2).sum())
    return Forecast(mean=intercept + slope * ahead, sd=sigma * np.sqrt(spread))


FORECASTERS: dict[str, Forecaster] = {
    "ets": ets,
    "seasonal_naive": seasonal_naive,
    "linear_trend": linear_trend,
}


@dataclass
class Errors:
    """Pooled errors of one forecaster in one lead-time bucket."""

    absolute: list[float] = field(default_factory=list)
    relative: list[float] = field(default_factory=list)
    inside: dict[float, int] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))

    def report(self) -> dict[str, float | int | None]:
        """MAE, MAPE (%) and coverage of each band."""
        n = len(self.absolute)
        return {
            "n": n,
            "mae": float(np.mean(self.absolute)) if n else None,
            "mape": 100 * float(np.mean(self.relative)) if self.relative else None,
            **{f"coverage_{int(lv * 100)}": self.inside[lv] / n if n else None for lv in LEVELS},
        }


def buckets_for(step: int, horizon: int) -> list[tuple[int, str]]:
    """Lead-time buckets up to the horizon, the last one ending at the horizon."""
    end = step * horizon
    chosen = [b for b in (*BUCKETS, *BUCKETS_LONG) if b[0] < end and b[0] >= step]
    return [*chosen, (end, f"<={label_seconds(end)}")]


def backtest(
    series: Sequence[tuple[str, Array]], *, step: int, season: int, horizon: int, folds: int
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Run every forecaster over `folds` rolling origins of each series; errors per bucket."""
    buckets = buckets_for(step, horizon)
    errors = {name: {label: Errors() for _, label in buckets} for name in FORECASTERS}
    leads = np.arange(1, horizon + 1) * step
    bucket_of = [next(label for end, label in buckets if lead <= end) for lead in leads]
    for name, values in series:
        first = len(values) - folds * horizon
        if first < max(2 * season + 1, 10):
            raise ForecastInputError(
                f"{len(values)} steps: too short for {folds} folds of {horizon} steps "
                f"after two seasons of {season}",
                where=name,
            )
        for origin in range(first, len(values), horizon):
            train, actual = values[:origin], values[origin : origin + horizon]
            for model, forecaster in FORECASTERS.items():
                _score(forecaster(train, season, horizon), actual, bucket_of, errors[model])
    return {m: {label: e.report() for label, e in by.items()} for m, by in errors.items()}


def _score(
    forecast: Forecast, actual: Array, bucket_of: list[str], errors: dict[str, Errors]
) -> None:
    bands = {level: forecast.band(level) for level in LEVELS}
    for h, value in enumerate(actual.tolist()):
        if value != value:  # missing: nothing to score
            continue
        into = errors[bucket_of[h]]
        miss = abs(value - float(forecast.mean[h]))
        into.absolute.append(miss)
        if value != 0:
            into.relative.append(miss / abs(value))
        for level, (low, high) in bands.items():
            into.inside[level] += int(low[h] <= value <= high[h])


def _forward_fill(values: Array) -> Array:
    known = ~np.isnan(values)
    index = np.where(known, np.arange(len(values)), 0)
    np.maximum.accumulate(index, out=index)
    return values[index]
