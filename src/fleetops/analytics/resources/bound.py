"""How low slack could go: the best one-recommendation-per-group allocation of the test period.

A recommender learns from the past; this bound is allowed to look at the period it is judged on.
Per group it picks the allocation, among the group's own usage values, that leaves least unused,
with all groups together violating no more often than a given rate (a reference method's). It is
what no per-group method can beat on that test period, so a goal below it is out of reach for
any of them, and the gap between a method and the bound is what better prediction could still
win.

The figure is a ratio (unused / allocated), so the choice is made by Dinkelbach's iteration:
minimise unused - s x allocated + lambda x violations, with lambda bisected to spend the
violation budget exactly, and s the ratio reached, until it settles.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

CANDIDATES = 256  # allocations tried per group: its usage at evenly spaced ranks
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Candidates:
    """Per group (rows) and candidate allocation (columns): what it leaves unused, allocates
    and violates."""

    unused: Floats
    allocated: Floats
    violations: Floats
    instances: int


def candidates(
    db: duckdb.DuckDBPyConnection, test_sql: str, resource: str, floor: float
) -> Candidates:
    """Every group's candidate allocations: its usage values (held above the floor)."""
    rows = db.execute(
        f"select grp, greatest({resource}, 0) as u, duration_s as d from ({test_sql}) "
        "order by grp, u"
    ).fetchnumpy()
    groups, start = np.unique(rows["grp"], return_index=True)
    usage, duration = rows["u"].astype(float), rows["d"].astype(float)
    ends = np.append(start[1:], len(usage))
    shape = (len(groups), CANDIDATES)
    unused, allocated, violations = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for g, (first, end) in enumerate(zip(start, ends, strict=True)):
        u, d = usage[first:end], duration[first:end]
        rank = np.linspace(0, len(u) - 1, CANDIDATES).round().astype(np.intp)
        value = np.maximum(u[rank], floor)
        # instances at or below each candidate: ties at the value do not violate
        below = np.searchsorted(u, value, side="right")
        d_below = np.concatenate(([0.0], np.cumsum(d)))[below]
        ud_below = np.concatenate(([0.0], np.cumsum(u * d)))[below]
        unused[g] = value * d_below - ud_below
        allocated[g] = value * d.sum()
        violations[g] = len(u) - below
    return Candidates(unused, allocated, violations, len(usage))


def best_slack(found: Candidates, violation_rate: float) -> dict[str, float]:
    """The lowest slack reachable at no more than `violation_rate`, and the rate it takes."""
    budget = violation_rate * found.instances
    rows = np.arange(found.unused.shape[0])
    ratio = 0.0
    picked = np.zeros(len(rows), dtype=np.intp)
    for _ in range(20):
        objective = found.unused - ratio * found.allocated
        low, high = 0.0, float(found.allocated.max() + 1.0) * 1e6
        for _ in range(80):
            lam = (low + high) / 2
            choice = np.argmin(objective + lam * found.violations, axis=1)
            if found.violations[rows, choice].sum() > budget:
                low = lam
            else:
                high = lam
        picked = np.argmin(objective + high * found.violations, axis=1)
        reached = found.unused[rows, picked].sum() / found.allocated[rows, picked].sum()
        if abs(reached - ratio) < 1e-6:
            break
        ratio = reached
    return {
        "slack": round(float(ratio), 4),
        "violation_rate": round(float(found.violations[rows, picked].sum() / found.instances), 4),
    }
