"""The bound: the best per-group allocation of the test period, worked out by hand."""

from __future__ import annotations

import duckdb
import pytest

from fleetops.analytics.resources import bound


def usage(groups: dict[str, list[float]]) -> str:
    """Rows of (grp, cpu, duration_s = 10) for each group's usage values."""
    values = ", ".join(f"('{g}', {u}, 10)" for g, us in groups.items() for u in us)
    return f"select * from (values {values}) v(grp, cpu, duration_s)"


def test_one_group_allocates_at_the_usage_the_budget_allows() -> None:
    found = bound.candidates(duckdb.connect(), usage({"g": [1, 2, 3, 4]}), "cpu", floor=0.0)
    # one violation in four allowed: 3, leaving (2 + 1 + 0) x 10 unused of 3 x 40
    assert bound.best_slack(found, 0.25) == {"slack": 0.25, "violation_rate": 0.25}
    # none allowed: 4, leaving (3 + 2 + 1) x 10 of 4 x 40
    assert bound.best_slack(found, 0.0) == {"slack": 0.375, "violation_rate": 0.0}


def test_the_budget_goes_where_it_saves_most() -> None:
    sql = usage({"spiky": [1, 1, 1, 10], "steady": [5, 5, 5, 6]})
    found = bound.candidates(duckdb.connect(), sql, "cpu", floor=0.0)
    # one violation of eight: spent on the spike (spiky at 1, nothing unused; steady at 6,
    # 3 x 1 x 10 unused) = 30 / (40 + 240); spent on steady instead: 270 / 600
    assert bound.best_slack(found, 1 / 8) == {"slack": round(30 / 280, 4), "violation_rate": 0.125}


def test_the_floor_holds_allocations_up() -> None:
    found = bound.candidates(duckdb.connect(), usage({"g": [0.0, 0.0]}), "cpu", floor=0.5)
    # nothing used: the floor is all unused
    assert bound.best_slack(found, 0.0) == pytest.approx({"slack": 1.0, "violation_rate": 0.0})
