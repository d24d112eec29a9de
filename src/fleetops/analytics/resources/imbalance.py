"""Imbalance between failure domains: how loaded each is, and the moves that would even them out.

A domain's utilisation over time: per time bucket, each machine's samples averaged, then the
domain's machines averaged weighted by their cores (CPU) or memory size (memory); its mean and
p95 are over the buckets it has samples in. Only machines with usage samples are measured, and
each domain says how many of its machines those are (the public sample has 16 of 4,034).

Evening out: a domain's load is its mean CPU utilisation x its measured cores; the fleet mean is
the measured load over the measured cores. A domain above it gives (load - fleet mean x cores)
cores of load, one below takes as much; the most loaded domain gives first, to the least loaded,
until one of them sits at the mean, then the next (a greedy transfer list, worked out in SQL as
the overlaps of the givers' and takers' cumulative amounts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from fleetops.analytics.resources import machines, traces

LEVELS = ("failure_domain_1", "failure_domain_2")
BUCKET_S = 300.0
SMALLEST_MOVE = 0.005  # cores: transfers below it are rounding
NONE = "(none)"  # the domain of machines whose rows never name one


def report(
    source: Path | duckdb.DuckDBPyConnection,
    *,
    level: str = "failure_domain_1",
    bucket_s: float = BUCKET_S,
    name: str = "fleet",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The imbalance report of the machine files in a directory, or of `name`'s machine tables
    already loaded into `source`."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    if not (math.isfinite(bucket_s) and bucket_s > 0):
        raise ValueError(f"the bucket must be a positive number of seconds, not {bucket_s}")
    owned = isinstance(source, Path)
    db = traces.connect() if isinstance(source, Path) else source
    if owned:
        db.execute("set enable_progress_bar = false")  # stdout is the report's
    try:
        if isinstance(source, Path):
            machines.load(db, source, name=name, progress=progress)
        if progress:
            progress("adding up")
        _domains(db, name=name, level=level, bucket_s=bucket_s)
        out = {
            "level": level,
            "bucket_s": float(bucket_s),
            "fleet": fleet(db, name=name),
            "spread": spread(db),
            "domains": domains(db),
            "transfers": transfers(db),
        }
    finally:
        if owned:
            db.close()
    if isinstance(source, Path):
        out["source"] = str(source)
    return out


def _domains(db: duckdb.DuckDBPyConnection, *, name: str, level: str, bucket_s: float) -> None:
    """Tables `imbalance_machines` (each machine's domain and size) and `imbalance_domains`
    (per domain: machines, cores, utilisation over time, load and its excess over the mean)."""
    b = f"{float(bucket_s)!r}::double"
    db.execute(f"""
create or replace temp table imbalance_machines as
select machine_id, coalesce({level}, {traces.literal(NONE)}) as domain, cpu_num, mem_size
from ({machines.machines_sql(name=name)})""")
    db.execute(f"""
create or replace temp table imbalance_domains as
with per_machine as (
    select m.domain, u.machine_id, floor(u.time_stamp / {b})::bigint as k,
           avg(u.cpu_util_percent) as cpu, avg(u.mem_util_percent) as mem,
           any_value(m.cpu_num) as cores, any_value(m.mem_size) as size
    from {name}_machine_usage u join imbalance_machines m using (machine_id)
    group by m.domain, u.machine_id, k
),
per_bucket as (
    select domain, k,
           sum(cpu * cores) filter (cpu is not null and cores > 0)
             / sum(cores) filter (cpu is not null and cores > 0) as cpu,
           sum(mem * size) filter (mem is not null and size > 0)
             / sum(size) filter (mem is not null and size > 0) as mem
    from per_machine group by domain, k
),
utilisation as (
    select domain, avg(cpu) as cpu_mean, quantile_cont(cpu, 0.95) as cpu_p95,
           avg(mem) as mem_mean, quantile_cont(mem, 0.95) as mem_p95
    from per_bucket group by domain
),
measured as (select distinct machine_id from {name}_machine_usage),
sizes as (
    select domain, count(*) as machines, coalesce(sum(cpu_num), 0) as cores,
           count(x.machine_id) as machines_with_usage,
           coalesce(sum(cpu_num) filter (x.machine_id is not null), 0) as cores_with_usage,
           coalesce(sum(mem_size) filter (x.machine_id is not null), 0) as memory_with_usage
    from imbalance_machines m left join measured x using (machine_id) group by domain
)
select s.*, u.cpu_mean, u.cpu_p95, u.mem_mean, u.mem_p95,
       u.cpu_mean / 100 * s.cores_with_usage as load_cores
from sizes s left join utilisation u using (domain)""")
    db.execute("""
alter table imbalance_domains add column excess_cores double;
update imbalance_domains set excess_cores = load_cores - cores_with_usage * (
    select sum(load_cores) / sum(cores_with_usage) from imbalance_domains
    where load_cores is not null and cores_with_usage > 0)""")


def fleet(db: duckdb.DuckDBPyConnection, *, name: str) -> dict[str, Any]:
    """The fleet's size, how much of it has usage samples, and its mean utilisation."""
    row = db.execute("""
select count(*), count(cpu_mean), sum(machines), sum(machines_with_usage), sum(cores),
       sum(cores_with_usage),
       sum(load_cores) / sum(cores_with_usage) filter (load_cores is not null) * 100,
       sum(mem_mean * memory_with_usage) / sum(memory_with_usage) filter (mem_mean is not null)
from imbalance_domains""").fetchall()[0]
    usage = db.execute(f"""
select count(*), count(distinct machine_id), min(time_stamp), max(time_stamp),
       count(distinct machine_id) filter (machine_id not in (select machine_id
                                                             from imbalance_machines))
from {name}_machine_usage""").fetchall()[0]
    keys = ("domains", "domains_with_usage", "machines", "machines_with_usage", "cores")
    out: dict[str, Any] = {k: int(v or 0) for k, v in zip(keys, row[:5], strict=True)}
    out["cores_with_usage"] = int(row[5] or 0)
    out["cpu_mean"] = _round(row[6])
    out["mem_mean"] = _round(row[7])
    out["usage"] = {
        "samples": usage[0],
        "machines": usage[1],
        "first_s": usage[2],
        "last_s": usage[3],
        "machines_without_meta": usage[4],
    }
    return out


def spread(db: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """How far apart the measured domains' mean utilisations are, CPU and memory."""
    out: dict[str, Any] = {}
    for resource in ("cpu", "mem"):
        row = db.execute(f"""
select max({resource}_mean), min({resource}_mean), stddev_pop({resource}_mean),
       arg_max(domain, {resource}_mean), arg_min(domain, {resource}_mean)
from imbalance_domains where {resource}_mean is not null""").fetchall()[0]
        high, low, deviation, most, least = row
        out[resource] = {
            "max": _round(high),
            "min": _round(low),
            "range": _round(None if high is None else high - low),
            "stdev": _round(deviation),
            "most_loaded": most,
            "least_loaded": least,
        }
    return out


def domains(db: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every domain, the most loaded first (those without usage samples last)."""
    cursor = db.execute("""
select domain, machines, machines_with_usage, cores, cores_with_usage, cpu_mean, cpu_p95,
       mem_mean, mem_p95, load_cores, excess_cores
from imbalance_domains order by cpu_mean desc nulls last, machines desc, domain""")
    names = [d[0] for d in cursor.description]
    return [
        {n: _round(v) if isinstance(v, float) else v for n, v in zip(names, row, strict=True)}
        for row in cursor.fetchall()
    ]


def transfers(db: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The greedy moves, most loaded giver to least loaded taker, that bring every measured
    domain to the fleet mean: (from, to, cores of load)."""
    rows = db.execute(f"""
with givers as (
    select domain, excess_cores as amount,
           sum(excess_cores) over (order by cpu_mean desc, domain) as upto
    from imbalance_domains where excess_cores > 0
),
takers as (
    select domain, -excess_cores as amount,
           sum(-excess_cores) over (order by cpu_mean, domain) as upto
    from imbalance_domains where excess_cores < 0
)
select g.domain, t.domain,
       least(g.upto, t.upto) - greatest(g.upto - g.amount, t.upto - t.amount) as cores
from givers g join takers t
  on g.upto - g.amount < t.upto and t.upto - t.amount < g.upto
where cores >= {SMALLEST_MOVE}
order by g.upto, t.upto""").fetchall()
    return [{"from": giver, "to": taker, "cores": round(cores, 2)} for giver, taker, cores in rows]


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)
