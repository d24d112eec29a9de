"""fleetops' recommender: a violation budget spent across groups where it saves most.

Usage is read as a share of the request (ratio buckets 5 % apart, as VPA's histograms), per group
and per task. A group's chance that an instance exceeds a candidate recommendation is estimated
with what its samples can vouch for: instances of one task move together, so a group counts as
its effective number of tasks (Kish: N^2 / sum n_t^2), shrunk toward the pooled ratios of the
groups with the same request (empirical Bayes, `prior_tasks` pseudo-tasks), plus `z` standard
errors (an upper confidence bound). That is a recommendation's risk.

Per group, the candidate minimising expected waste (the duration-weighted allocation left unused,
what slack counts) + lambda x expected violations, no candidate riskier than `max_risk` (but the
largest), with lambda bisected until a budget of expected violations holds. The budget is
calibrated against the VPA-style recommender on the training period itself, on several folds:
both learn on its earlier part, and the budget rate is the largest whose choice violates no more
often than VPA's on its later part (`holdouts`); the smallest fold's rate, per instance, is then
spent over the whole period (the violation condition is a ceiling). Candidates run from 1 % to
8 x the request: a group that uses more than it requests is recommended more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

RATIO = 1.05  # bucket growth, as VPA's histograms
FIRST = 0.01  # the smallest ratio bucket: 1 % of the request
TOP = 8.0  # the largest candidate: 8 x the request
BUCKETS = int(np.ceil(np.log(TOP / FIRST) / np.log(RATIO))) + 1
# candidate b (0..BUCKETS-1) is request x EDGES[b]; bucket BUCKETS holds usage over the top one
EDGES = np.minimum(FIRST * RATIO ** np.arange(BUCKETS), TOP)
EDGES[-1] = TOP
REQUEST = int(np.searchsorted(EDGES, 1.0 - 1e-12))  # the candidate nearest above the request
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Calibration:
    """fleetops' parameters (tuned on a split inside a training period: docs/resources.md)."""

    prior_tasks: float = 5.0  # pseudo-tasks of the pooled prior
    z: float = 2.0  # standard errors added to a risk
    max_risk: float = 0.2  # no group's risk above this (the largest candidate is always allowed)
    # the later shares of the training span that each calibrate a budget; the smallest is kept
    holdouts: tuple[float, ...] = (0.5, 0.4, 0.3, 0.2)
    reference_quantile: float = 0.9  # without a holdout, the budget: this quantile's risk ...
    reference_margin: float = 0.15  # ... plus this margin


@dataclass
class RiskModel:
    """Per group: its request, and at each candidate, risk, expected waste and instances."""

    groups: list[str]
    request: Floats
    risk: Floats  # groups x BUCKETS
    waste: Floats  # groups x BUCKETS
    instances: Floats
    reference: npt.NDArray[np.int64]  # candidate index of the reference target per group

    def candidate(self, group: int, value: float) -> int:
        """The smallest candidate at or above `value` (a recommendation as a candidate)."""
        ratio = value / self.request[group] if self.request[group] > 0 else 1.0
        return int(min(BUCKETS - 1, np.searchsorted(EDGES, ratio - 1e-12)))


def _bucket_sql(usage: str, request: str) -> str:
    return (
        f"case when {usage} > {TOP} * {request} then {BUCKETS} "
        f"when {usage} <= {FIRST} * {request} then 0 "
        f"else least({BUCKETS - 1}, ceil(ln({usage} / {request} / {FIRST}) / ln({RATIO})))::int end"
    )


def risk_model(
    db: duckdb.DuckDBPyConnection, samples_sql: str, resource: str, calibration: Calibration
) -> RiskModel:
    """The risk and waste of every candidate of every group of the samples, for one resource."""
    req = f"req_{resource}"
    rows = db.execute(
        f"""select grp, task, any_value({req}) as req, {_bucket_sql(resource, req)} as b,
                   count(*) as n, sum(duration_s) as d, sum(duration_s * {resource}) as ud
            from ({samples_sql}) where {req} > 0 group by grp, task, b order by grp"""
    ).fetchnumpy()
    groups, index = np.unique(rows["grp"], return_inverse=True)
    count = len(groups)
    request = np.zeros(count)
    request[index] = rows["req"]
    above, teff, n, used_d, used_ud = _tallies(rows, index, count)
    pooled = np.zeros_like(above)
    for value in np.unique(request):
        same = request == value
        pooled[same] = (above[same] * n[same, None]).sum(0) / n[same].sum()
    shrunk = (teff[:, None] * above + calibration.prior_tasks * pooled) / (
        teff[:, None] + calibration.prior_tasks
    )
    spread = np.sqrt(shrunk * (1 - shrunk) / (teff[:, None] + calibration.prior_tasks))
    risk = np.clip(shrunk + calibration.z * spread, 0.0, 1.0)
    recs = request[:, None] * EDGES[None, :]
    # waste is what slack counts: the allocation left unused under each instance's usage
    unused = recs * used_d[:, :BUCKETS] - used_ud[:, :BUCKETS]
    reference = _reference(above, calibration)
    return RiskModel(list(groups), request, risk, unused, n, reference)


def _tallies(
    rows: dict[str, npt.NDArray[np.generic]], index: npt.NDArray[np.intp], count: int
) -> tuple[Floats, Floats, Floats, Floats, Floats]:
    """Per group: share above each candidate, effective tasks, instances, and cumulative
    duration and usage x duration by bucket."""
    above = np.zeros((count, BUCKETS))
    teff, n = np.zeros(count), np.zeros(count)
    cum_d, cum_ud = np.zeros((count, BUCKETS + 1)), np.zeros((count, BUCKETS + 1))
    bounds = np.searchsorted(index, np.arange(count + 1))
    buckets = rows["b"].astype(np.intp)
    for g in range(count):
        part = slice(bounds[g], bounds[g + 1])
        _, task = np.unique(rows["task"][part], return_inverse=True)
        counts = np.zeros((task.max() + 1, BUCKETS + 1))
        np.add.at(counts, (task, buckets[part]), rows["n"][part].astype(float))
        per_task = counts.sum(1)
        n[g] = per_task.sum()
        teff[g] = n[g] ** 2 / (per_task**2).sum()
        above[g] = np.clip((n[g] - np.cumsum(counts.sum(0))[:BUCKETS]) / n[g], 0.0, 1.0)
        np.add.at(cum_d[g], buckets[part], rows["d"][part].astype(float))
        np.add.at(cum_ud[g], buckets[part], rows["ud"][part].astype(float))
    return above, teff, n, np.cumsum(cum_d, 1), np.cumsum(cum_ud, 1)


def _reference(above: Floats, calibration: Calibration) -> npt.NDArray[np.int64]:
    """The candidate of the reference target per group: its quantile's bucket, plus margin."""
    covered = 1 - above >= calibration.reference_quantile - 1e-12
    # a group whose quantile is over its request keeps the request
    quantile = np.where(covered.any(axis=1), np.argmax(covered, axis=1), BUCKETS - 1)
    value = EDGES[quantile] * (1 + calibration.reference_margin)
    found: npt.NDArray[np.int64] = np.minimum(np.searchsorted(EDGES, value - 1e-12), BUCKETS - 1)
    return found.astype(np.int64)


def choose(
    model: RiskModel, budget: float | None = None, max_risk: float = 1.0
) -> npt.NDArray[np.int64]:
    """Per group, the candidate index that spends a budget of expected violations (by default
    the reference's) where it saves most waste, no candidate riskier than `max_risk` but the
    request."""
    rows = np.arange(len(model.groups))
    violations = model.risk * model.instances[:, None]
    if budget is None:
        budget = violations[rows, model.reference].sum()
    violations = np.where(model.risk > max_risk, 1e30, violations)
    violations[:, -1] = model.risk[:, -1] * model.instances
    low, high = 1e-12, 1e15
    for _ in range(60):
        lam = np.sqrt(low * high)
        picked = np.argmin(model.waste + lam * violations, axis=1)
        if violations[rows, picked].sum() > budget:
            low = lam
        else:
            high = lam
    best: npt.NDArray[np.int64] = np.argmin(model.waste + high * violations, axis=1)
    return best.astype(np.int64)


Reference = Callable[[str], dict[str, float]]


def fit(
    db: duckdb.DuckDBPyConnection,
    samples_sql: str,
    resource: str,
    calibration: Calibration,
    *,
    reference: Reference,
    floor: float,
) -> dict[str, float]:
    """Per group, fleetops' recommendation: the budget is the expected violation rate that, learned
    on the training span's earlier part, matched `reference`'s violation rate on its later part."""
    rates = []
    for share in calibration.holdouts:
        cut = _holdout_cut(db, samples_sql, share)
        if cut is None:
            continue
        early = f"select * from ({samples_sql}) where arrival_s < {cut!r}"
        late = f"select * from ({samples_sql}) where arrival_s >= {cut!r}"
        found = budget_rate(db, early, late, resource, calibration, reference(early), floor)
        if found is not None:
            rates.append(found)
    rate = min(rates) if rates else None
    model = risk_model(db, samples_sql, resource, calibration)
    budget = None if rate is None else rate * model.instances.sum()
    recs = model.request * EDGES[choose(model, budget, calibration.max_risk)]
    return dict(zip(model.groups, recs.tolist(), strict=True))


def _holdout_cut(db: duckdb.DuckDBPyConnection, samples_sql: str, share: float) -> float | None:
    sql = f"select min(arrival_s), max(arrival_s) from ({samples_sql})"
    low, high = db.execute(sql).fetchall()[0]
    if share <= 0 or low is None or high <= low:
        return None
    return float(high - share * (high - low))


def budget_rate(
    db: duckdb.DuckDBPyConnection,
    early: str,
    late: str,
    resource: str,
    calibration: Calibration,
    reference_recs: dict[str, float],
    floor: float,
) -> float | None:
    """The largest expected violation rate (per instance, by the risk model learned on `early`)
    whose choice violates no more often on `late` than the reference's recommendations do."""
    model = risk_model(db, early, resource, calibration)
    if not model.groups:
        return None
    req = f"req_{resource}"
    db.execute("create or replace temp table ref_recs (grp varchar, rec double)")
    db.execute("insert into ref_recs select unnest(?), unnest(?)",
               [list(reference_recs), list(reference_recs.values())])  # fmt: skip
    target = db.execute(
        f"""select count(*) filter (where {resource} >
                   greatest({floor}, coalesce(r.rec, {req}))), count(*)
            from ({late}) s left join ref_recs r using (grp)"""
    ).fetchone()
    rows = db.execute(
        f"select grp, {_bucket_sql(resource, req)} as b, count(*) as n from ({late}) "
        f"where {req} > 0 group by all"
    ).fetchnumpy()
    if target is None or not target[1]:
        return None
    index = {group: i for i, group in enumerate(model.groups)}
    known = np.array([index.get(g, -1) for g in rows["grp"]], dtype=np.intp)
    buckets, counts = rows["b"].astype(np.intp), rows["n"].astype(float)
    # a group unseen in `early` keeps its request
    fixed = counts[(known < 0) & (buckets > REQUEST)].sum()
    seen = known >= 0
    total = model.instances.sum()
    low, high = 0.0, 1.0
    for _ in range(30):
        rate = (low + high) / 2
        picked = choose(model, rate * total, calibration.max_risk)
        over = buckets[seen] > picked[known[seen]]
        if fixed + counts[seen][over].sum() > target[0]:
            high = rate
        else:
            low = rate
    # the expected rate of the choice found, so that the same budget makes the same choice
    picked = choose(model, low * total, calibration.max_risk)
    expected = model.risk[np.arange(len(picked)), picked] * model.instances
    return float(expected.sum() / total)
