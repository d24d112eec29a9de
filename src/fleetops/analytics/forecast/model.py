"""Additive damped Holt-Winters, ETS(A,Ad,A), with prediction intervals from its error variance.

The model in error-correction form (Hyndman & Athanasopoulos, *Forecasting: Principles and
Practice*, ch. 8), for a series `y` with season length `m` (`m = 1`: no season, ETS(A,Ad,N)):

    forecast  f_t = l + phi * b + s[t mod m]          error  e_t = y_t - f_t
    level     l  <- l + phi * b + alpha * e_t
    trend     b  <- phi * b + beta * e_t
    season    s[t mod m] <- s[t mod m] + gamma * e_t

`(alpha, beta, gamma, phi)` is the grid point whose forecasts 1..AHEAD steps ahead, made from
origins through the series after one season of burn-in, have the least mean squared error (the
"amse" criterion of R's `forecast::ets`): the one-step error alone picks a nervous model (high
alpha and gamma) whose day-ahead forecasts are poor. The whole grid runs at once, one NumPy
vector per state. A missing value (NaN) sets `e_t = 0`: the state moves
on by its forecast and learns nothing there.

The h-step forecast error is `e_{T+h} + sum_{j<h} c_j e_{T+h-j}`, `c_j = alpha + beta *
(phi + .. + phi^j) + gamma [j mod m = 0]`, so with one-step variance `sigma^2` the interval's
variance is `sigma^2 (1 + sum_{j<h} c_j^2)`: it widens with the horizon. The bands assume normal
errors; `fleetops forecast backtest` measures how often actuals really fall inside them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from fleetops.analytics.forecast.exceptions import ForecastInputError

Array = npt.NDArray[np.float64]
ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9)
BETA_SHARES = (0.0, 0.02, 0.1, 0.3)  # beta as a share of alpha (beta <= alpha keeps it stable)
GAMMA_SHARES = (0.0, 0.05, 0.15, 0.3, 0.5)  # gamma as a share of 1 - alpha
PHIS = (0.9, 0.95, 0.98, 1.0)
MIN_POINTS = 10
AHEAD = 96  # steps of the fitting criterion's average (chosen on held-in series)
ORIGINS = 400  # at most this many origins score it: the fit stays well under a second


@dataclass(frozen=True)
class Fit:
    """A fitted model: its parameters, final state and one-step error variance."""

    alpha: float
    beta: float
    gamma: float
    phi: float
    season: int
    level: float
    trend: float
    seasonal: Array
    sigma: float
    points: int

    def forecast(self, horizon: int) -> Forecast:
        """Forecast `horizon` steps ahead with the standard deviation of each step's error."""
        steps = np.arange(1, horizon + 1)
        damped = np.cumsum(self.phi**steps)
        slots = (self.points + steps - 1) % self.season
        mean = self.level + damped * self.trend + self.seasonal[slots]
        c = self.alpha + self.beta * damped
        if self.season > 1:
            c = c + self.gamma * (steps % self.season == 0)
        spread = np.concatenate(([1.0], 1.0 + np.cumsum(c[:-1] ** 2)))
        return Forecast(mean=mean, sd=self.sigma * np.sqrt(spread))

    def describe(self) -> dict[str, float | int]:
        """The fitted parameters, for reports."""
        return {
            "alpha": self.alpha,
            "beta": round(self.beta, 6),
            "gamma": round(self.gamma, 6),
            "phi": self.phi,
            "season": self.season,
            "sigma": round(self.sigma, 6),
        }


@dataclass(frozen=True)
class Forecast:
    """Point forecasts and the standard deviation of their errors, one per step ahead."""

    mean: Array
    sd: Array

    def band(self, level: float) -> tuple[Array, Array]:
        """The central `level` (e.g. 0.95) prediction interval at each step."""
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return self.mean - z * self.sd, self.mean + z * self.sd


def detect_season(step: int, points: int) -> int:
    """A daily season for sub-daily steps that divide a day, when more than two days are
    there (the fit needs two seasons plus a point); else 1."""
    if step >= 86400 or 86400 % step:
        return 1
    season = 86400 // step
    return season if points > 2 * season else 1


def fit(values: Array, *, season: int) -> Fit:
    """Fit the grid to `values` (NaN = missing) and keep the least one-step squared error."""
    known = int(np.count_nonzero(~np.isnan(values)))
    if known < max(MIN_POINTS, 2 * season + 1):
        need = max(MIN_POINTS, 2 * season + 1)
        raise ForecastInputError(
            f"{known} known points; at least {need} are needed (two seasons of {season})"
        )
    alpha, beta, gamma, phi = _grid(seasonal=season > 1)
    level, trend, seasonal = _initial_state(values, season, size=len(alpha))
    _, amse = _run(values, season, alpha, beta, gamma, phi, level, trend, seasonal)
    best = int(np.argmin(amse))
    params = (alpha[best : best + 1], beta[best : best + 1], gamma[best : best + 1])
    level, trend, seasonal = _initial_state(values, season, size=1)
    final_sse, _ = _run(values, season, *params, phi[best : best + 1], level, trend, seasonal)
    scored = _scored(values, season)
    return Fit(
        alpha=float(alpha[best]),
        beta=float(beta[best]),
        gamma=float(gamma[best]),
        phi=float(phi[best]),
        season=season,
        level=float(level[0]),
        trend=float(trend[0]),
        seasonal=seasonal[0].copy(),
        sigma=float(np.sqrt(final_sse[0] / max(scored, 1))),
        points=len(values),
    )


def _scored(values: Array, season: int) -> int:
    return int(np.count_nonzero(~np.isnan(values[season if season > 1 else 2 :])))


def _grid(*, seasonal: bool) -> tuple[Array, Array, Array, Array]:
    gammas = GAMMA_SHARES if seasonal else (0.0,)
    rows = [
        (a, a * b, (1 - a) * g, p)
        for a, b, g, p in itertools.product(ALPHAS, BETA_SHARES, gammas, PHIS)
    ]
    grid = np.asarray(rows, dtype=np.float64)
    return grid[:, 0], grid[:, 1], grid[:, 2], grid[:, 3]


def _initial_state(values: Array, season: int, *, size: int) -> tuple[Array, Array, Array]:
    """Level and trend from the first two seasons (two points without one), so that the
    first forecasts sit on the data; the season from the first season's deviations."""
    if season == 1:
        first = values[~np.isnan(values)][:2]
        slope = float(first[1] - first[0])
        first_level = np.full(size, float(first[0]) - slope)
        return first_level, np.full(size, slope), np.zeros((size, 1))
    one, two = np.nanmean(values[:season]), np.nanmean(values[season : 2 * season])
    slope = float((two - one) / season) if np.isfinite(two) else 0.0
    centre = np.arange(season) - (season - 1) / 2
    deviation = np.nan_to_num(values[:season] - (one + slope * centre))
    start = float(one) - slope * (season + 1) / 2
    level = np.full(size, start)
    return level, np.full(size, slope), np.tile(deviation - deviation.mean(), (size, 1))


def _run(
    values: Array,
    season: int,
    alpha: Array,
    beta: Array,
    gamma: Array,
    phi: Array,
    level: Array,
    trend: Array,
    seasonal: Array,
) -> tuple[Array, Array]:
    """Run the recursion in place over every grid point: after burn-in, the sum of squared
    one-step errors, and the criterion: the mean squared error of the paths 1..AHEAD steps
    ahead, summed over (at most ORIGINS evenly spaced) origins."""
    sse, amse = np.zeros_like(alpha), np.zeros_like(alpha)
    burn = season if season > 1 else 2
    stride = -(-len(values) // ORIGINS)
    ahead = np.arange(1, AHEAD + 1)
    damped = np.cumsum(phi[:, None] ** ahead, axis=1)
    for t, y in enumerate(values.tolist()):
        slot = t % season
        base = level + phi * trend
        if y != y:  # NaN: missing, carry the state forward
            level[:] = base
            trend *= phi
            continue
        error = y - base - seasonal[:, slot]
        if t >= burn:
            sse += error * error
        if t >= burn and (t - burn) % stride == 0:
            window = values[t : t + AHEAD]
            known = ~np.isnan(window)
            k = len(window)
            paths = level[:, None] + damped[:, :k] * trend[:, None]
            paths += seasonal[:, (t + ahead[:k] - 1) % season]
            amse += (((window - paths)[:, known]) ** 2).sum(axis=1) / max(int(known.sum()), 1)
        level[:] = base + alpha * error
        trend[:] = phi * trend + beta * error
        seasonal[:, slot] += gamma * error
    return sse, amse
