"""Three recommenders of right-sized requests per workload group, CPU and memory apart.

- `vpa`: as the Kubernetes VPA recommender with its documented defaults: usage into exponential
  histograms (buckets growing 5 %; the first 0.01 core, and for memory 0.002 of a machine, about
  VPA's 10 MB), samples decaying with a 24 h half-life of the trace clock, target = weighted p90
  (the end of the bucket it falls in) + 15 %. A CPU sample weighs its request in cores (at least
  0.1) and counts once a minute of the run, as metrics-server feeds VPA; memory is one sample per
  instance (VPA keeps a container's peak per interval). OOM: every minute the recommendation is
  recomputed, and a memory sample over the one in force (at first the request) counts as
  1.2 x its value, as VPA's OOM bump.
- `krr`: Robusta KRR's simple strategy: CPU p95 of the per-minute samples, memory max + 15 %.
- `fleetops`: `calibrated`: a violation budget, matched to VPA's on folds of the training
  period, spent where it saves most.

Every method right-sizes both ways, as VPA does (a group that uses more than it requests is
recommended more), and is held above a floor. A group the training period never saw (a new
job, a new task type) falls back, for every method alike, to that method's recommendation for
its request profile (plan_cpu, plan_mem) learned over all groups; a profile never seen keeps its
request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np

from fleetops.analytics.resources import calibrated
from fleetops.analytics.resources.calibrated import Calibration

METHODS = ("vpa", "krr", "fleetops")
RESOURCES = ("cpu", "mem")
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Settings:
    """What the recommenders run with; CPU in cores, memory in the units of the source."""

    floor: dict[str, float] = field(default_factory=lambda: {"cpu": 0.025, "mem": 0.01})
    half_life_s: float = 24 * 3600.0
    vpa_percentile: float = 0.9
    vpa_margin: float = 0.15
    vpa_oom_bump: float = 1.2
    krr_cpu_percentile: float = 0.95
    krr_mem_buffer: float = 0.15
    calibration: Calibration = field(default_factory=Calibration)


@dataclass(frozen=True, slots=True)
class Histogram:
    """VPA's exponential bucket layout: bucket n starts at first x (ratio^n - 1) / (ratio - 1)."""

    first: float
    ratio: float = 1.05
    size: int = 400

    def start(self, n: np.ndarray) -> np.ndarray:
        return self.first * (self.ratio ** n.astype(float) - 1) / (self.ratio - 1)

    def sql(self, value: str) -> str:
        return (
            f"least({self.size - 1}, floor(ln(1 + {value} * {self.ratio - 1} / {self.first})"
            f" / ln({self.ratio})))::int"
        )

    def percentile(self, weights: np.ndarray, q: float) -> np.ndarray:
        """Per row, the end of the bucket where the q-th weighted percentile falls (VPA's)."""
        cumulative = np.cumsum(weights, axis=1)
        total = cumulative[:, -1:]
        bucket = np.argmax(cumulative >= q * total - 1e-12, axis=1)
        return np.asarray(self.start(bucket + 1))


HISTOGRAMS = {"cpu": Histogram(first=0.01), "mem": Histogram(first=0.002)}


def vpa(
    db: duckdb.DuckDBPyConnection, samples_sql: str, resource: str, settings: Settings
) -> dict[str, float]:
    """VPA's target per group (before the cap and floor)."""
    histogram = HISTOGRAMS[resource]
    newest = db.execute(f"select max(arrival_s) from ({samples_sql})").fetchall()[0][0]
    decay = f"pow(2, (arrival_s - {newest or 0.0}) / {settings.half_life_s})"
    if resource == "cpu":
        weight = f"greatest(req_cpu, 0.1) * greatest(1, ceil(duration_s / {MINUTE})) * {decay}"
    else:
        weight = decay
    rows = db.execute(
        f"""select grp, floor(arrival_s / {MINUTE})::bigint as step, {histogram.sql(resource)} as b,
                   any_value(req_{resource}) as req, sum({weight}) as w
            from ({samples_sql}) group by all order by step"""
    ).fetchnumpy()
    groups, index = np.unique(rows["grp"], return_inverse=True)
    weights = np.zeros((len(groups), histogram.size))
    request = np.zeros(len(groups))
    request[index] = rows["req"]
    if resource == "cpu":
        np.add.at(weights, (index, rows["b"].astype(np.intp)), rows["w"])
    else:
        _memory_with_ooms(weights, index, rows, request, settings)
    target = histogram.percentile(weights, settings.vpa_percentile) * (1 + settings.vpa_margin)
    return dict(zip(groups.tolist(), target.tolist(), strict=True))


def _memory_with_ooms(
    weights: np.ndarray,
    index: np.ndarray,
    rows: dict[str, np.ndarray],
    request: np.ndarray,
    settings: Settings,
) -> None:
    """Add memory samples a minute at a time; one over the recommendation in force is an OOM."""
    histogram = HISTOGRAMS["mem"]
    buckets = rows["b"].astype(np.intp)
    steps = rows["step"]
    seen = np.zeros(len(request), dtype=bool)
    for step in np.unique(steps):
        now = steps == step
        target = histogram.percentile(weights, settings.vpa_percentile) * (1 + settings.vpa_margin)
        in_force = np.where(seen, np.minimum(target, request), request)
        g, b = index[now], buckets[now]
        value = histogram.start(b)
        oom = value > in_force[g]
        bumped = value * settings.vpa_oom_bump
        b = np.where(oom, _bucket(histogram, bumped), b)
        np.add.at(weights, (g, b), rows["w"][now])
        seen[g] = True


def _bucket(histogram: Histogram, value: np.ndarray) -> np.ndarray:
    n = np.floor(np.log(1 + value * (histogram.ratio - 1) / histogram.first) / np.log(1.05))
    bucket: np.ndarray = np.minimum(n, histogram.size - 1).astype(np.intp)
    return bucket


def krr(
    db: duckdb.DuckDBPyConnection, samples_sql: str, resource: str, settings: Settings
) -> dict[str, float]:
    """KRR's simple strategy per group: CPU p95 of the per-minute samples, memory max + 15 %."""
    if resource == "mem":
        buffer = 1 + settings.krr_mem_buffer
        sql = f"select grp, max(mem)::double * {buffer} from ({samples_sql}) group by grp"
        return dict(db.execute(sql).fetchall())
    minutes = f"greatest(1, ceil(duration_s / {MINUTE}))"
    sql = f"""
select grp, (min(cpu) filter (where below >= {settings.krr_cpu_percentile} * total))::double from (
  select grp, cpu, sum({minutes}) over (partition by grp order by cpu
                                        rows between unbounded preceding and current row) as below,
         sum({minutes}) over (partition by grp) as total
  from ({samples_sql})) group by grp"""
    return dict(db.execute(sql).fetchall())


def fleetops(
    db: duckdb.DuckDBPyConnection, samples_sql: str, resource: str, settings: Settings
) -> dict[str, float]:
    """fleetops' recommendation per group (`calibrated`)."""
    return calibrated.fit(
        db,
        samples_sql,
        resource,
        settings.calibration,
        reference=lambda sql: vpa(db, sql, resource, settings),
        floor=settings.floor[resource],
    )


RECOMMENDERS = {"vpa": vpa, "krr": krr, "fleetops": fleetops}
