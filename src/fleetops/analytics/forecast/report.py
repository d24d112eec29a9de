"""The usage report: a fitted forecast at a few lead times, and when it reaches a capacity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fleetops.analytics.forecast.capacity import days_until_full
from fleetops.analytics.forecast.model import fit
from fleetops.analytics.forecast.series import RegularSeries, label_seconds


def usage_report(
    series: RegularSeries,
    *,
    season: int,
    horizon: int,
    capacity: float | None,
    leads: Sequence[int],
) -> dict[str, Any]:
    """Fit `series`, forecast `horizon` steps and report the chosen lead times (and the last).

    The last bin always holds a point (it is the last row's), so the forecast starts from data."""
    values = series.values
    model = fit(values, season=season)
    forecast = model.forecast(horizon)
    lo80, hi80 = forecast.band(0.8)
    lo95, hi95 = forecast.band(0.95)
    chosen = sorted({min(horizon, max(1, lead // series.step)) for lead in leads} | {horizon})
    last = len(values) - 1
    rows = [
        {
            "ahead": label_seconds(h * series.step),
            "timestamp": series.stamp(last + h).isoformat(),
            "mean": float(forecast.mean[h - 1]),
            "lo80": float(lo80[h - 1]),
            "hi80": float(hi80[h - 1]),
            "lo95": float(lo95[h - 1]),
            "hi95": float(hi95[h - 1]),
        }
        for h in chosen
    ]
    report: dict[str, Any] = {
        "points": len(values),
        "step_s": series.step,
        "interpolated": series.interpolated,
        "missing": series.missing,
        "duplicates": series.duplicates,
        "last": {"timestamp": series.stamp(last).isoformat(), "value": float(values[last])},
        "fit": model.describe(),
        "forecast": rows,
    }
    if capacity is not None:
        full = days_until_full(float(values[last]), forecast, capacity=capacity, step=series.step)
        report["days_until_full"] = {
            "capacity": capacity,
            "level": full.level,
            "median": full.median,
            "earliest": full.earliest,
            "latest": full.latest,
        }
    return report
