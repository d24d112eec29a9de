"""Learn from a training period, replay the test period: what each method allocates and misses.

Per method and resource, over the test instances: allocated = sum of recommendation x duration,
used = sum of usage x duration (usage is the instance's average: the trace has no peaks).
Instance by instance, never netted across instances: slack = sum of max(0, allocation - usage) x
duration / allocated (the share of the allocation left unused, in [0, 1]); shortfall = sum of
max(0, usage - allocation) x duration / used (the share of the usage the allocation missed);
violation rate = the share of instances whose usage exceeds the recommendation. The original
requests are the reference row, and `bound` the floor no per-group method can go below.
Everything is SQL over the trace's tables: the instances never become Python rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from fleetops.analytics.resources import bound, calibrated, traces
from fleetops.analytics.resources.recommenders import METHODS, RECOMMENDERS, RESOURCES, Settings


def evaluate(
    train: Path,
    test: Path,
    *,
    split_at: float | None,
    key: str = "task",
    settings: Settings | None = None,
    spill: Path | None = None,
) -> dict[str, Any]:
    """Recommend from `train`, replay `test`; the same directory is split at `split_at`."""
    settings = settings or Settings()
    same = train.resolve() == test.resolve()
    db = traces.connect(spill)
    try:
        traces.load(db, train, name="train")
        if not same:
            traces.load(db, test, name="test")
        cut = split_at if same else None
        train_where = traces.period(split_at=cut, part="train")
        test_where = traces.period(split_at=cut, part="test")
        train_sql = {
            level: traces.samples(db, trace="train", key=level, where=train_where)
            for level in (key, "profile")
        }
        test_sql = traces.samples(db, trace="train" if same else "test", key=key, where=test_where)
        recommend(db, train_sql[key], train_sql["profile"], settings)
        report = replay(db, test_sql, settings)
        report["bound"] = bound_of(db, test_sql, report["methods"]["vpa"], settings)
        report["recommendations"] = describe(db, train_sql[key], settings)
    finally:
        db.close()
    report["split"] = {"train": str(train), "test": str(test), "split_at": cut, "key": key}
    return report


def recommend(
    db: duckdb.DuckDBPyConnection, group_sql: str, profile_sql: str, settings: Settings
) -> None:
    """Table `recs` (method, level, grp, resource, rec): each method's raw targets, per group and
    per request profile (the fallback of unseen groups)."""
    db.execute(
        "create or replace temp table recs "
        "(method varchar, level varchar, grp varchar, resource varchar, rec double)"
    )
    for method in METHODS:
        for level, sql in (("group", group_sql), ("profile", profile_sql)):
            for resource in RESOURCES:
                found = RECOMMENDERS[method](db, sql, resource, settings)
                if found:
                    db.execute(
                        "insert into recs select ?, ?, unnest(?), ?, unnest(?)",
                        [method, level, list(found), resource, list(found.values())],
                    )


def _applied(resource: str, settings: Settings) -> str:
    """The recommendation an instance gets: its group's, else its profile's, else its request;
    held above the floor."""
    floor = settings.floor[resource]
    return f"greatest({floor}, coalesce(g_{resource}, p_{resource}, req_{resource}))"


def _joined(test_sql: str, method: str | None) -> str:
    if method is None:
        nulls = ", ".join(f"null::double as {c}" for c in ("g_cpu", "g_mem", "p_cpu", "p_mem"))
        return f"select *, {nulls}, false as unseen from ({test_sql})"
    pivots = {
        f"{level[0]}_{resource}": f"max(rec) filter (level = '{level}' and resource = '{resource}')"
        for level in ("group", "profile")
        for resource in RESOURCES
    }
    columns = ", ".join(f"{expr} as {name}" for name, expr in pivots.items())
    return f"""
with r as (select grp, {columns} from recs where method = '{method}' group by grp),
     g as (select grp, g_cpu, g_mem from r where g_cpu is not null),
     p as (select grp as profile, p_cpu, p_mem from r where p_cpu is not null)
select s.*, g.g_cpu, g.g_mem, p.p_cpu, p.p_mem, g.grp is null as unseen
from ({test_sql}) s left join g using (grp) left join p using (profile)"""


def replay(db: duckdb.DuckDBPyConnection, test_sql: str, settings: Settings) -> dict[str, Any]:
    """Each method's figures on the test instances, and the requests' as the reference."""
    methods: dict[str, Any] = {}
    for method in (None, *METHODS):
        figures = []
        for resource in RESOURCES:
            rec = _applied(resource, settings) if method else f"req_{resource}"
            figures.append(
                f"sum({rec} * duration_s), sum({resource} * duration_s), "
                f"sum(greatest(0, {rec} - {resource}) * duration_s), "
                f"sum(greatest(0, {resource} - {rec}) * duration_s), "
                f"avg(({resource} > {rec})::int)"
            )
        row = db.execute(
            f"select count(*), count(*) filter (unseen), {', '.join(figures)} "
            f"from ({_joined(test_sql, method)})"
        ).fetchall()[0]
        if not row[0]:
            raise ValueError("the test period holds no instance")
        methods[method or "request"] = {
            resource: _figures(*row[2 + 5 * i : 7 + 5 * i]) for i, resource in enumerate(RESOURCES)
        }
        counts = {"test_instances": row[0], "unseen_group_instances": row[1]}
    request = methods.pop("request")
    return {"methods": methods, "request": request, "counts": counts}


def bound_of(
    db: duckdb.DuckDBPyConnection,
    test_sql: str,
    reference: dict[str, dict[str, float]],
    settings: Settings,
) -> dict[str, dict[str, float]]:
    """Per resource, the lowest slack any per-group recommendation could reach on the test
    period at the reference's violation rate (`bound`)."""
    return {
        resource: bound.best_slack(
            bound.candidates(db, test_sql, resource, settings.floor[resource]),
            reference[resource]["violation_rate"],
        )
        for resource in RESOURCES
    }


def _figures(
    allocated: float, used: float, unused: float, over: float, violation_rate: float
) -> dict[str, float]:
    return {
        "slack": round(unused / allocated, 4) if allocated else 0.0,
        "violation_rate": round(float(violation_rate), 4),
        "shortfall": round(over / used, 4) if used else 0.0,
        "allocated": round(float(allocated), 2),
        "used": round(float(used), 2),
    }


def describe(
    db: duckdb.DuckDBPyConnection, group_sql: str, settings: Settings, top: int = 10
) -> dict[str, list[dict[str, Any]]]:
    """Per method, the groups whose recommendation saves most: request, recommendation, expected
    saving ((request - recommendation) x the group's training duration; negative for a raise)
    and risk (the expected
    share of its instances over the recommendation, by fleetops' calibrated estimate)."""
    out: dict[str, list[dict[str, Any]]] = {method: [] for method in METHODS}
    for resource in RESOURCES:
        model = calibrated.risk_model(db, group_sql, resource, settings.calibration)
        index = {group: i for i, group in enumerate(model.groups)}
        rows = db.execute(
            f"""select r.method, r.grp, any_value(s.req_{resource}) as req,
                       greatest({settings.floor[resource]}, any_value(r.rec)),
                       sum(s.duration_s)
                from recs r join ({group_sql}) s using (grp)
                where r.level = 'group' and r.resource = '{resource}' group by r.method, r.grp"""
        ).fetchall()
        for method, group, request, rec, duration in rows:
            i = index.get(group)
            risk = float(model.risk[i, model.candidate(i, rec)]) if i is not None else None
            out[method].append(
                {
                    "group": group,
                    "resource": resource,
                    "request": request,
                    "recommendation": round(rec, 4),
                    "saving": round((request - rec) * duration, 1),
                    "risk": None if risk is None else round(risk, 4),
                }
            )
    return {m: sorted(rows, key=lambda r: -r["saving"])[:top] for m, rows in out.items()}
