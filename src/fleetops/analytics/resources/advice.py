"""A right-sizing report of one trace: every group's recommendation, with its saving and risk,
the trace's totals, and per group a bounded series over time for the charts.

The recommendations are `evaluate.recommend`'s (one method's, all groups, not only the top
ten), floored as `evaluate.describe` applies them (a raise where usage exceeds the request);
the whole trace is the training period, since a report recommends for the groups it saw (no
profile fallback is needed, so none is learned). The series are averages of concurrent
instances per time bucket (an instance counts in a bucket for the seconds it overlaps it), in
SQL: the instances never become rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from fleetops.analytics.resources import evaluate, traces
from fleetops.analytics.resources.recommenders import METHODS, RESOURCES, Settings
from fleetops.analytics.resources.schemas import (
    BUCKETS,
    WASTERS,
    Advice,
    Figures,
    ReportIn,
    Series,
    Total,
    Waster,
)


def compute(
    directory: Path,
    *,
    key: str = "task",
    method: str = "fleetops",
    buckets: int = BUCKETS,
    settings: Settings | None = None,
    spill: Path | None = None,
) -> ReportIn:
    """The report of the trace at `directory`, grouped by `key`, recommended by `method`."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    settings = settings or Settings()
    db = traces.connect(spill)
    try:
        traces.load(db, directory, name="trace")
        group_sql = traces.samples(db, trace="trace", key=key)
        if not db.execute(f"select count(*) from ({group_sql})").fetchall()[0][0]:
            raise ValueError(f"{directory}: the trace holds no instance of a known task")
        evaluate.recommend(db, group_sql, f"select * from ({group_sql}) where false", settings)
        advice = [
            Advice.model_validate(row)
            for row in evaluate.describe(db, group_sql, settings, top=1 << 30)[method]
        ]
        figures = _figures(db, group_sql, advice, buckets)
    finally:
        db.close()
    return ReportIn(
        source=directory.name or str(directory),
        key=key,
        method=method,
        figures=figures,
        recommendations=sorted(advice, key=lambda a: (-a.saving, a.group, a.resource)),
    )


def _figures(
    db: duckdb.DuckDBPyConnection, group_sql: str, advice: list[Advice], buckets: int
) -> Figures:
    """Totals (resource x seconds) and each group's per-bucket series."""
    rec: dict[tuple[str, str], float] = {(a.group, a.resource): a.recommendation for a in advice}
    sums = ", ".join(
        f"sum(req_{r} * duration_s), sum({r} * duration_s), "
        f"sum(greatest(0, req_{r} - {r}) * duration_s)"
        for r in RESOURCES
    )
    rows = db.execute(
        f"select grp, sum(duration_s), {sums} from ({group_sql}) group by grp"
    ).fetchall()
    totals = {
        r: dict.fromkeys(("requested", "used", "recommended", "wasted"), 0.0) for r in RESOURCES
    }
    wasters: list[Waster] = []
    for group, duration, *figures in rows:
        for i, resource in enumerate(RESOURCES):
            requested, used, wasted = (float(f) for f in figures[3 * i : 3 * i + 3])
            totals[resource]["requested"] += requested
            totals[resource]["used"] += used
            totals[resource]["wasted"] += wasted
            wasters.append(
                Waster(group=group, resource=resource, requested=requested, wasted=wasted)
            )
            share = rec.get((group, resource))
            totals[resource]["recommended"] += (
                requested if share is None else share * float(duration)
            )
    start, end = db.execute(
        f"select min(arrival_s), max(arrival_s + duration_s) from ({group_sql})"
    ).fetchall()[0]
    width = max(1.0, (float(end) - float(start)) / buckets)
    return Figures(
        totals={r: Total(**{k: round(v, 2) for k, v in t.items()}) for r, t in totals.items()},
        start_s=float(start),
        bucket_s=round(width, 3),
        series=_series(db, group_sql, float(start), width, buckets),
        wasters=[
            w
            for resource in RESOURCES
            for w in sorted(
                (w for w in wasters if w.resource == resource), key=lambda w: -w.wasted
            )[:WASTERS]
        ],
    )


def _series(
    db: duckdb.DuckDBPyConnection, group_sql: str, start: float, width: float, buckets: int
) -> dict[str, Series]:
    """Per group and bucket, the averages of concurrent instances, requests and usage."""
    overlap = (
        f"(least(s.arrival_s + s.duration_s, {start} + (b.i + 1) * {width})"
        f" - greatest(s.arrival_s, {start} + b.i * {width}))"
    )
    columns = ["instances", "cpu_requested", "cpu_used", "mem_requested", "mem_used"]
    values = ["1", "s.req_cpu", "s.cpu", "s.req_mem", "s.mem"]
    sums = ", ".join(f"sum({v} * {overlap}) / {width}" for v in values)
    rows = db.execute(
        f"""select s.grp, b.i, {sums}
            from ({group_sql}) s join (select range as i from range({buckets})) b
              on s.arrival_s < {start} + (b.i + 1) * {width}
             and s.arrival_s + s.duration_s > {start} + b.i * {width}
            group by all"""
    ).fetchall()
    found: dict[str, dict[str, list[float]]] = {}
    for group, i, *figures in rows:
        series = found.setdefault(group, {c: [0.0] * buckets for c in columns})
        for column, value in zip(columns, figures, strict=True):
            series[column][int(i)] = round(float(value), 4)
    return {group: Series(**series) for group, series in sorted(found.items())}


def as_rows(report: ReportIn) -> list[dict[str, Any]]:
    """The recommendations as table rows, largest saving first."""
    return [a.model_dump() for a in report.recommendations]
