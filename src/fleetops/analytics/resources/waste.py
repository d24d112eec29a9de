"""Waste: what instances request and leave unused, per group and over time, and what
right-sizing would free.

Every figure is computed instance by instance, never netted across instances: an instance's
unused allocation is max(0, request - usage) x its duration, so one instance using more than it
asked for never hides another's idle request. Usage is the instance's average over its run (and
its peak where the source has one: `cpu_peak`, `mem_peak`). Over time, an instance counts in each
time bucket it overlaps by exactly the seconds it overlaps, its usage taken as flat over its run.
Right-sizing applies each group's recommendation (learned by `evaluate.recommend` on the whole
trace) as evaluate's replay does: the group's, else its profile's, held above the floor and never
above the request. All of it is SQL over the trace's tables in DuckDB.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from fleetops.analytics.resources import evaluate, traces
from fleetops.analytics.resources.exceptions import TraceError
from fleetops.analytics.resources.recommenders import METHODS, RESOURCES, Settings

Progress = Callable[[str], None]
HOUR = 3600.0
BUCKETS = 60  # about this many time buckets when none is given
MAX_BUCKETS = 10_000
# Bucket widths a default is rounded up to, in seconds: whole minutes, hours and days read well.
NICE_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
TABLE = "waste_instances"


@dataclass(frozen=True, slots=True)
class Prices:
    """What an hour of a core and of a GB of memory cost, and the GB in one unit of the
    source's memory (None: memory stays in the source's unit and gets no price)."""

    core_hour: float
    gb_hour: float
    gb_per_unit: float | None = None

    def __post_init__(self) -> None:
        if self.core_hour < 0 or self.gb_hour < 0:
            raise ValueError("prices cannot be negative")
        if self.gb_per_unit is not None and not self.gb_per_unit > 0:
            raise ValueError(f"GB per memory unit must be positive, not {self.gb_per_unit}")

    def unit_hour(self, resource: str) -> float | None:
        """The price of one hour of one unit of `resource` as the trace counts it."""
        if resource == "cpu":
            return self.core_hour
        return None if self.gb_per_unit is None else self.gb_per_unit * self.gb_hour


def report(
    source: Path | duckdb.DuckDBPyConnection,
    *,
    prices: Prices,
    trace: str = "trace",
    key: str = "task",
    top: int = 10,
    bucket_s: float | None = None,
    method: str | None = "fleetops",
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The waste report of a trace directory, or of trace `trace` already loaded into `source`.

    `method` None skips right-sizing (and the time its recommenders take)."""
    if method is not None and method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if top < 1:
        raise ValueError("top must be at least 1")
    if bucket_s is not None and not (math.isfinite(bucket_s) and bucket_s > 0):
        raise ValueError(f"the bucket must be a positive number of seconds, not {bucket_s}")
    say = progress or (lambda _stage: None)
    owned = isinstance(source, Path)
    db = traces.connect() if isinstance(source, Path) else source
    if owned:
        db.execute("set enable_progress_bar = false")  # stdout is the report's
    try:
        if isinstance(source, Path):
            say(f"reading {source}")
            traces.load(db, source, name=trace)
        settings = settings or Settings()
        sql = traces.samples(db, trace=trace, key=key)
        if method is not None:
            say(f"learning {method}'s recommendations")
            profiles = traces.samples(db, trace=trace, key="profile")
            evaluate.recommend(db, sql, profiles, settings)
        say("adding up")
        peaks = instances(db, sql, method, settings)
        out = _report(db, prices=prices, top=top, bucket_s=bucket_s, method=method, peaks=peaks)
    finally:
        if owned:
            db.close()
    out["trace"]["key"] = key
    if isinstance(source, Path):
        out["trace"]["source"] = str(source)
    return out


def instances(
    db: duckdb.DuckDBPyConnection, samples_sql: str, method: str | None, settings: Settings
) -> tuple[str, ...]:
    """Table `waste_instances`: one row per instance with its run, request, usage and the
    allocation right-sizing would give it. The resources whose peaks the source has."""
    columns = {d[0] for d in db.execute(f"select * from ({samples_sql}) limit 0").description}
    peaks = tuple(r for r in RESOURCES if f"{r}_peak" in columns)
    peak_columns = "".join(f", s.{r}_peak" for r in peaks)
    if method is None:
        recs = "select null::varchar as grp, null::double as rec, null::varchar as resource, "
        recs += "null::varchar as level where false"
    else:
        recs = f"select grp, rec, resource, level from recs where method = {traces.literal(method)}"
    applied = ", ".join(
        f"least(s.req_{r}, greatest({settings.floor[r]}, coalesce(g.{r}, p.{r}, s.req_{r}))) "
        f"as rec_{r}"
        for r in RESOURCES
    )
    pivot = ", ".join(f"max(rec) filter (resource = '{r}') as {r}" for r in RESOURCES)
    db.execute(f"""
create or replace temp table {TABLE} as
with r as ({recs}),
     g as (select grp, {pivot} from r where level = 'group' group by grp),
     p as (select grp as profile, {pivot} from r where level = 'profile' group by grp)
select s.grp, s.arrival_s as start_s, s.arrival_s + s.duration_s as end_s, s.duration_s,
       s.req_cpu, s.cpu, s.req_mem, s.mem{peak_columns}, {applied}
from ({samples_sql}) s left join g using (grp) left join p on p.profile = s.profile""")
    return peaks


def _report(
    db: duckdb.DuckDBPyConnection,
    *,
    prices: Prices,
    top: int,
    bucket_s: float | None,
    method: str | None,
    peaks: tuple[str, ...],
) -> dict[str, Any]:
    count, groups, start, end = db.execute(
        f"select count(*), count(distinct grp), min(start_s), max(end_s) from {TABLE}"
    ).fetchall()[0]
    if not count:
        raise TraceError("the trace holds no instance")
    span = float(end - start)
    bucket = bucket_s or default_bucket(span)
    trace = {"instances": count, "groups": groups, "start_s": start, "end_s": end, "span_s": span}
    over_time = timeline(
        db, bucket, first=float(start), last=float(end), rightsized=method is not None
    )
    freed = None
    if method is not None:
        freed = rightsizing(db, prices, method, span)
        for resource in RESOURCES:
            freed[resource]["busiest_bucket"] = busiest(over_time["buckets"], resource)
    return {
        "trace": trace,
        "totals": totals(db, prices, peaks),
        "groups": top_groups(db, prices, top, rightsized=method is not None),
        "timeline": over_time,
        "rightsizing": freed,
        "prices": {
            "core_hour": prices.core_hour,
            "gb_hour": prices.gb_hour,
            "gb_per_memory_unit": prices.gb_per_unit,
        },
    }


def busiest(buckets: list[dict[str, Any]], resource: str) -> dict[str, Any]:
    """The bucket where the most of `resource` is allocated, and what right-sizing leaves of it:
    the capacity the recommendations would give back when it is most wanted."""
    top = max(buckets, key=lambda b: (b[f"{resource}_allocated"], -b["start_s"]))
    allocated, rightsized = top[f"{resource}_allocated"], top[f"{resource}_rightsized"]
    return {
        "start_s": top["start_s"],
        "allocated": allocated,
        "rightsized": rightsized,
        "freed": round(allocated - rightsized, 3),
    }


def default_bucket(span_s: float) -> float:
    """The bucket width giving about 60 buckets over `span_s`, rounded up to a round width."""
    wanted = span_s / BUCKETS
    for width in NICE_SECONDS:
        if width >= wanted:
            return float(width)
    return float(math.ceil(wanted / 86400) * 86400)


def _sums(resource: str, usage: str, prefix: str = "") -> str:
    """Requested, used and unused unit-hours of `resource`, instance by instance."""
    return (
        f"sum(req_{resource} * duration_s) / {HOUR} as {prefix}req_{resource}, "
        f"sum({usage} * duration_s) / {HOUR} as {prefix}use_{resource}, "
        f"sum(greatest(0, req_{resource} - {usage}) * duration_s) / {HOUR} "
        f"as {prefix}waste_{resource}"
    )


def _figures(requested: float, used: float, wasted: float) -> dict[str, float]:
    return {
        "requested": round(float(requested), 3),
        "used": round(float(used), 3),
        "wasted": round(float(wasted), 3),
        "waste_share": round(wasted / requested, 4) if requested else 0.0,
    }


def _cost(prices: Prices, resource: str, unit_hours: float) -> float | None:
    price = prices.unit_hour(resource)
    return None if price is None else round(float(unit_hours) * price, 2)


def totals(db: duckdb.DuckDBPyConnection, prices: Prices, peaks: tuple[str, ...]) -> dict[str, Any]:
    """Requested, used and wasted unit-hours per resource over the whole trace, and their cost;
    against the peaks as well where the source has them."""
    parts = [_sums(r, r) for r in RESOURCES] + [_sums(r, f"{r}_peak", "peak_") for r in peaks]
    row = db.execute(f"select {', '.join(parts)} from {TABLE}").fetchall()[0]
    out: dict[str, Any] = {}
    for i, resource in enumerate(RESOURCES):
        figures: dict[str, Any] = _figures(*row[3 * i : 3 * i + 3])
        figures["unit"] = "core-hours" if resource == "cpu" else "unit-hours"
        figures["wasted_cost"] = _cost(prices, resource, row[3 * i + 2])
        if resource in peaks:
            j = 3 * (len(RESOURCES) + peaks.index(resource))
            peak = _figures(*row[j : j + 3])
            figures["peak"] = {k: peak[k] for k in ("used", "wasted", "waste_share")}
        out[resource] = figures
    return out


def top_groups(
    db: duckdb.DuckDBPyConnection, prices: Prices, top: int, *, rightsized: bool = True
) -> list[dict[str, Any]]:
    """The `top` groups whose waste costs most (CPU alone while memory has no price): their
    requested, used and wasted unit-hours, their recommendation and the unit-hours it frees
    (None without right-sizing)."""
    cost = " + ".join(
        f"waste_{r} * {prices.unit_hour(r)}" for r in RESOURCES if prices.unit_hour(r) is not None
    )
    freed_sql = ", ".join(
        f"sum((req_{r} - rec_{r}) * duration_s) / {HOUR} as freed_{r}, max(rec_{r}) as rec_{r}"
        for r in RESOURCES
    )
    rows = db.execute(f"""
select grp, count(*) as n, {", ".join(_sums(r, r) for r in RESOURCES)}, {freed_sql},
       {cost} as cost
from {TABLE} group by grp order by cost desc, grp limit {int(top)}""").fetchall()
    out = []
    for grp, n, *figures, cost in rows:
        sums, rest = figures[: 3 * len(RESOURCES)], figures[3 * len(RESOURCES) :]
        entry: dict[str, Any] = {"group": grp, "instances": n}
        for i, resource in enumerate(RESOURCES):
            entry[resource] = _figures(*sums[3 * i : 3 * i + 3])
            freed, rec = (float(v) for v in rest[2 * i : 2 * i + 2])
            entry[resource]["freed"] = round(freed, 3) if rightsized else None
            entry[resource]["recommendation"] = round(rec, 4) if rightsized else None
        entry["wasted_cost"] = round(float(cost), 2)
        out.append(entry)
    return out


def timeline(
    db: duckdb.DuckDBPyConnection,
    bucket_s: float,
    *,
    first: float,
    last: float,
    rightsized: bool = True,
) -> dict[str, Any]:
    """Per time bucket [k x bucket_s, (k + 1) x bucket_s): the cores and memory allocated, used
    and right-sized (None without right-sizing) by the instances running in it, averaged over
    the bucket. Each instance counts its request x the seconds it overlaps the bucket; buckets
    with nothing running stay."""
    low, high = math.floor(first / bucket_s), math.ceil(last / bucket_s)
    if high - low > MAX_BUCKETS:
        raise ValueError(
            f"a {bucket_s:g} s bucket cuts the trace's {last - first:,.0f} s into "
            f"{high - low:,} buckets; at most {MAX_BUCKETS:,}"
        )
    b = f"{float(bucket_s)!r}::double"
    values = [(f"req_{r}", f"{r}_allocated") for r in RESOURCES]
    values += [(r, f"{r}_used") for r in RESOURCES]
    values += [(f"rec_{r}", f"{r}_rightsized") for r in RESOURCES]
    sums = ", ".join(f"sum({v} * overlap) / {b} as {name}" for v, name in values)
    names = [name for _, name in values]
    rows = db.execute(f"""
with pieces as (
    select k, least(end_s, (k + 1) * {b}) - greatest(start_s, k * {b}) as overlap,
           {", ".join(v for v, _ in values)}
    from (select *, unnest(range(floor(start_s / {b})::bigint, ceil(end_s / {b})::bigint)) as k
          from {TABLE} where end_s > start_s)
),
per_bucket as (select k, {sums} from pieces group by k)
select k * {b}, {", ".join(f"coalesce({n}, 0)" for n in names)}
from range({low}, {max(high, low + 1)}) as all_buckets(k) left join per_bucket using (k)
order by k""").fetchall()
    buckets = [
        {
            "start_s": start,
            **{
                n: round(float(v), 3) if rightsized or not n.endswith("_rightsized") else None
                for n, v in zip(names, rest, strict=True)
            },
        }
        for start, *rest in rows
    ]
    return {"bucket_s": float(bucket_s), "buckets": buckets}


def rightsizing(
    db: duckdb.DuckDBPyConnection, prices: Prices, method: str, span_s: float
) -> dict[str, Any]:
    """What the recommendations would free: unit-hours over the trace, and per hour (the
    average over the trace's span), CPU in cores, memory in GB when its size is known; the
    money both are worth at the configured prices."""
    freed = ", ".join(
        f"sum((req_{r} - rec_{r}) * duration_s) / {HOUR}, sum(req_{r} * duration_s) / {HOUR}"
        for r in RESOURCES
    )
    row = db.execute(f"select {freed} from {TABLE}").fetchall()[0]
    hours = span_s / HOUR
    out: dict[str, Any] = {"method": method, "learned_on": "the whole trace"}
    total_money, hourly_money = 0.0, 0.0
    for i, resource in enumerate(RESOURCES):
        unit_hours, requested = float(row[2 * i]), float(row[2 * i + 1])
        figures: dict[str, Any] = {
            "unit_hours": round(unit_hours, 3),
            "per_hour": round(unit_hours / hours, 3) if hours else 0.0,
            "share_of_requested": round(unit_hours / requested, 4) if requested else 0.0,
        }
        if resource == "mem":
            gb = prices.gb_per_unit
            figures["gb_hours"] = None if gb is None else round(unit_hours * gb, 3)
            figures["gb_per_hour"] = (
                None if gb is None or not hours else round(unit_hours * gb / hours, 3)
            )
        price = prices.unit_hour(resource)
        figures["money"] = None if price is None else round(unit_hours * price, 2)
        total_money += unit_hours * (price or 0.0)
        hourly_money += unit_hours * (price or 0.0) / hours if hours else 0.0
        out[resource] = figures
    out["money"] = {"over_trace": round(total_money, 2), "per_hour": round(hourly_money, 2)}
    out["money"]["memory_priced"] = prices.gb_per_unit is not None
    return out
