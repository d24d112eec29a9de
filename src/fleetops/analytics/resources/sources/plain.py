"""A plain usage CSV with a header, read by column name into `{name}_usage`.

Columns: `time` (ISO 8601, UTC unless it has an offset, or epoch seconds), `group` (the workload:
what a recommendation is for), `duration_s`, `cpu_request`, `cpu_used`, `mem_request`, `mem_used`
(CPU in cores, memory in GiB), optional `cpu_peak`, `mem_peak`, `job`, `owner`, `cluster`,
`machine`; other columns are ignored. One row is one instance (or one sample) with its average
usage over `duration_s` seconds. A group's rows share one request per value: the unit of a
request (`task`) is the group with its request.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from fleetops.analytics.resources.sources import canonical
from fleetops.analytics.resources.sources.files import Field, first_record, read_csv

LAYOUT = "usage-csv"
FIELDS = (
    Field("time", "TIME"),
    Field("group"),
    Field("duration_s", "DOUBLE", non_negative=True),
    Field("cpu_request", "DOUBLE", non_negative=True),
    Field("cpu_used", "DOUBLE", non_negative=True),
    Field("mem_request", "DOUBLE", non_negative=True),
    Field("mem_used", "DOUBLE", non_negative=True),
    Field("cpu_peak", "DOUBLE", non_negative=True, optional=True),
    Field("mem_peak", "DOUBLE", non_negative=True, optional=True),
    Field("job", optional=True),
    Field("owner", optional=True),
    Field("cluster", optional=True),
    Field("machine", optional=True),
)
# A CSV whose header names one of these is taken for a plain usage file (and then must have all
# the required columns): a typo in one column gets its own message, not "no usage files".
MARKERS = {"group", "cpu_request", "cpu_used", "mem_request", "mem_used"}


def is_plain(path: Path) -> bool:
    """Whether the CSV's first record is a header naming plain usage columns."""
    return bool(MARKERS & set(first_record(path)))


def load(db: duckdb.DuckDBPyConnection, name: str, paths: Sequence[Path]) -> canonical.Loaded:
    """Read the plain usage files into `{name}_usage`."""
    table = f"{name}_raw_plain"
    try:
        read_csv(db, table, paths, FIELDS, header=True)
        rows = canonical.append(
            db,
            name,
            f"""select time, duration_s, coalesce(job, "group"),
                       "group" || '|' || cpu_request || '|' || mem_request, "group",
                       owner, cluster, machine, "group" || '#' || row_number() over (),
                       cpu_request, mem_request,
                       cpu_used, mem_used, cpu_peak, mem_peak
                from {table}""",
        )
    finally:
        db.execute(f"drop table if exists {table}")
    files = ", ".join(p.name for p in paths)
    return canonical.Loaded(LAYOUT, files, canonical.CORES, canonical.GIB, rows)
