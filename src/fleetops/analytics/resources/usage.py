"""What each workload group requests and uses, from any usage source: how a user checks a reader.

Per group (the `--key` of evaluate): rows, distinct instances, hours, and for CPU and memory the
duration-weighted mean request, mean usage, usage as a share of the request and the highest peak
(where the source has peaks); the groups that hold the most requested CPU-time first. The sources
loaded, with their units, come first: figures are in those units.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from fleetops.analytics.resources import traces
from fleetops.analytics.resources.sources import canonical, prometheus
from fleetops.metrics.schemas import PrometheusReader

NAME = "src"


def summary(db: duckdb.DuckDBPyConnection, *, name: str, key: str, top: int) -> dict[str, Any]:
    """The per-group summary of `{name}_usage` and the record of its sources."""
    if key not in traces.KEYS:
        raise ValueError(f"unknown key {key!r}; expected one of {', '.join(traces.KEYS)}")
    figures = ", ".join(
        f"sum(req_{r} * duration_s) / sum(duration_s) as req_{r}, "
        f"sum({r} * duration_s) / sum(duration_s) as {r}, "
        f"sum({r} * duration_s) / nullif(sum(req_{r} * duration_s), 0) as {r}_share, "
        f"max({r}_peak) as {r}_peak"
        for r in ("cpu", "mem")
    )
    cursor = db.execute(
        f"""select {traces.KEYS[key]} as grp, count(*) as rows,
                   count(distinct instance) as instances, sum(duration_s) / 3600 as hours,
                   {figures}
            from {name}_usage group by grp
            order by sum(req_cpu * duration_s) desc, grp limit {int(top)}"""
    )
    names = [column[0] for column in cursor.description or ()]
    groups = [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in zip(names, row, strict=True)}
        for row in cursor.fetchall()
    ]
    row = db.execute(
        f"select count(*), count(distinct {traces.KEYS[key]}) from {name}_usage"
    ).fetchone()
    rows, count = row if row else (0, 0)
    return {
        "sources": [asdict(s) for s in canonical.sources(db, name)],
        "key": key,
        "rows": rows,
        "groups_total": count,
        "groups": groups,
    }


def from_path(path: Path, *, key: str, top: int) -> dict[str, Any]:
    """Load the usage files at `path` and summarise them."""
    db = traces.connect()
    try:
        traces.load(db, path, name=NAME)
        return summary(db, name=NAME, key=key, top=top)
    finally:
        db.close()


async def from_prometheus(
    reader: PrometheusReader,
    *,
    url: str,
    start: datetime,
    end: datetime,
    step: float,
    namespace: str | None,
    key: str,
    top: int,
) -> dict[str, Any]:
    """Read container usage from a Prometheus over [start, end] and summarise it."""
    db = traces.connect()
    try:
        await prometheus.load(
            db, reader, name=NAME, url=url, start=start, end=end, step=step, namespace=namespace
        )
        return summary(db, name=NAME, key=key, top=top)
    finally:
        db.close()
