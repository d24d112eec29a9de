"""The model on series whose answer is known: a trend plus a season, a straight line."""

from __future__ import annotations

import numpy as np
import pytest

from fleetops.analytics.forecast.capacity import crossing, days_until_full
from fleetops.analytics.forecast.exceptions import ForecastInputError
from fleetops.analytics.forecast.model import detect_season, fit

HOURS = 24 * 30


def trend_and_season(t: np.ndarray) -> np.ndarray:
    """50 + 0.01 per hour, plus a daily sine of amplitude 10 (hourly steps)."""
    return 50 + 0.01 * t + 10 * np.sin(2 * np.pi * t / 24)


def test_recovers_a_known_trend_and_season() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(HOURS)
    model = fit(trend_and_season(t) + rng.normal(0, 0.5, HOURS), season=24)
    ahead = model.forecast(48)
    truth = trend_and_season(np.arange(HOURS, HOURS + 48))
    # Over the next two days (hours 720..767) the truth's lowest is at hour 738 (sine -1):
    # 50 + 7.38 - 10 = 47.38, its highest at hour 750 (sine +1): 50 + 7.50 + 10 = 67.50. The
    # forecast stays within 1.0 of it everywhere (noise sd 0.5), and learns the noise level.
    assert truth.min() == pytest.approx(47.38)
    assert truth.max() == pytest.approx(67.50)
    assert np.abs(ahead.mean - truth).max() < 1.0
    assert model.sigma == pytest.approx(0.5, rel=0.15)
    assert model.season == 24


def test_interval_covers_fresh_noise_and_widens_with_horizon() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(HOURS)
    model = fit(trend_and_season(t) + rng.normal(0, 1.0, HOURS), season=24)
    ahead = model.forecast(24 * 7)
    assert np.all(np.diff(ahead.sd) >= 0)
    assert ahead.sd[-1] > ahead.sd[0]
    low, high = ahead.band(0.95)
    assert np.all(high - low == pytest.approx(2 * 1.959964 * ahead.sd))
    truth = trend_and_season(np.arange(HOURS, HOURS + 24 * 7))
    draws = truth + rng.normal(0, 1.0, (200, len(truth)))
    inside = float(((draws >= low) & (draws <= high)).mean())
    assert 0.9 <= inside <= 0.995


def test_a_random_walk_has_a_growing_band() -> None:
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(0, 1, 500))
    ahead = fit(walk, season=1).forecast(100)
    # Nearly a random walk: alpha near 1, so sd_h ~ sigma * sqrt(h) ~ 10 at h = 100.
    assert ahead.sd[99] / ahead.sd[0] > 5


def test_days_until_full_on_a_straight_line() -> None:
    # 10, 10.5, .. 59.5 hourly; 100 is (100 - 59.5) / 0.5 = 81 hours = 3.375 days after the last.
    line = 10 + 0.5 * np.arange(100)
    model = fit(line, season=1)
    assert model.sigma == pytest.approx(0.0, abs=1e-9)
    full = days_until_full(float(line[-1]), model.forecast(24 * 7), capacity=100, step=3600)
    assert full.median == pytest.approx(3.375)
    assert full.earliest == pytest.approx(3.375)
    assert full.latest == pytest.approx(3.375)
    short = days_until_full(float(line[-1]), model.forecast(24), capacity=100, step=3600)
    assert short.median is None


def test_crossing_interpolates_and_bands_order() -> None:
    # From 8 (last) to 10, 12: 11 is reached half way between steps 1 and 2.
    assert crossing(8.0, np.array([10.0, 12.0]), 11.0) == pytest.approx(1.5)
    assert crossing(8.0, np.array([10.0, 12.0]), 9.0) == pytest.approx(0.5)
    assert crossing(12.0, np.array([10.0]), 11.0) == 0.0
    assert crossing(8.0, np.array([10.0, 10.5]), 11.0) is None
    rng = np.random.default_rng(5)
    noisy = 10 + 0.5 * np.arange(200) + rng.normal(0, 2, 200)
    full = days_until_full(
        float(noisy[-1]), fit(noisy, season=1).forecast(500), capacity=200, step=3600
    )
    assert full.earliest is not None
    assert full.median is not None
    assert full.earliest < full.median
    # The lower band may never reach 200: its width grows faster than the trend climbs.
    assert full.latest is None or full.latest > full.median
    # The line reaches 200 at hour 380, (380 - 199) / 24 = 7.54 days after the last; Holt's
    # local slope on noise of sd 2 is within 0.1 of 0.5, which moves the crossing by ~1.5 days.
    assert full.median == pytest.approx(181 / 24, abs=1.5)


def test_missing_values_are_carried_over() -> None:
    values = trend_and_season(np.arange(HOURS)).astype(float)
    values[300:330] = np.nan
    model = fit(values, season=24)
    truth = trend_and_season(np.arange(HOURS, HOURS + 24))
    assert np.abs(model.forecast(24).mean - truth).max() < 0.5


def test_too_short_and_season_detection() -> None:
    with pytest.raises(ForecastInputError, match="at least 49"):
        fit(np.arange(30.0), season=24)
    assert detect_season(300, 2 * 288 + 1) == 288
    assert detect_season(300, 2 * 288) == 1
    assert detect_season(7 * 60, 10_000) == 1  # 7 minutes do not divide a day
    assert detect_season(86400, 10_000) == 1
