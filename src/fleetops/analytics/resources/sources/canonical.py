"""The one table every reader fills, and the record of what each loaded source was.

`{name}_usage` holds one row per instance (or per usage sample): when it started (`arrival_s`),
for how long (`duration_s`), the request in force and its average usage over that time (CPU in
cores, or the source's normalised unit; memory in GiB where the source gives bytes, else its
normalised unit), with peaks where the source has them. `task` is the unit whose instances share
one request, unique in the source. `{name}_sources` says, per source loaded, its layout, its
units and how many rows it gave or left out (and why), so that no figure is read in the wrong unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from fleetops.analytics.resources.exceptions import TraceError

USAGE_COLUMNS = (
    ("arrival_s", "DOUBLE"),
    ("duration_s", "DOUBLE"),
    ("job", "VARCHAR"),
    ("task", "VARCHAR"),
    ("task_type", "VARCHAR"),
    ("owner", "VARCHAR"),
    ("cluster", "VARCHAR"),
    ("machine", "VARCHAR"),
    ("instance", "VARCHAR"),
    ("req_cpu", "DOUBLE"),
    ("req_mem", "DOUBLE"),
    ("cpu", "DOUBLE"),
    ("mem", "DOUBLE"),
    ("cpu_peak", "DOUBLE"),
    ("mem_peak", "DOUBLE"),
)
NAMES = tuple(name for name, _ in USAGE_COLUMNS)
CORES, NCU = "cores", "NCU"
GIB, NORMALISED = "GiB", "normalised"


@dataclass(frozen=True, slots=True)
class Loaded:
    """One source read into `{name}_usage`: what it was, its units, what it gave and left out."""

    layout: str
    source: str
    cpu_unit: str
    mem_unit: str
    rows: int
    skipped: int = 0
    skipped_why: str = ""


def create(db: duckdb.DuckDBPyConnection, name: str) -> None:
    """Empty `{name}_usage` and `{name}_sources`."""
    columns = ", ".join(f"{c} {t}" for c, t in USAGE_COLUMNS)
    db.execute(f"create or replace table {name}_usage ({columns})")
    db.execute(
        f"create or replace table {name}_sources (layout varchar, source varchar, "
        "cpu_unit varchar, mem_unit varchar, rows bigint, skipped bigint, skipped_why varchar)"
    )


def append(db: duckdb.DuckDBPyConnection, name: str, select: str) -> int:
    """Insert the rows of `select` (the usage columns, in order) and count them."""
    before = count(db, name)
    db.execute(f"insert into {name}_usage ({', '.join(NAMES)}) {select}")
    return count(db, name) - before


def count(db: duckdb.DuckDBPyConnection, name: str) -> int:
    row = db.execute(f"select count(*) from {name}_usage").fetchone()
    return int(row[0]) if row else 0


def record(db: duckdb.DuckDBPyConnection, name: str, loaded: Loaded) -> Loaded:
    """Keep `loaded` in `{name}_sources`; a source whose units differ from one already there,
    or that gave no row, is refused (its figures could not be compared or would be empty)."""
    if loaded.rows == 0:
        why = f" ({loaded.skipped:,} rows left out: {loaded.skipped_why})" if loaded.skipped else ""
        raise TraceError(f"no usage row{why}", where=loaded.source)
    for other in sources(db, name):
        if (other.cpu_unit, other.mem_unit) != (loaded.cpu_unit, loaded.mem_unit):
            raise TraceError(
                f"CPU in {loaded.cpu_unit} and memory {loaded.mem_unit}, but {other.source} has "
                f"CPU in {other.cpu_unit} and memory {other.mem_unit}: load them apart",
                where=loaded.source,
            )
    db.execute(
        f"insert into {name}_sources values (?, ?, ?, ?, ?, ?, ?)",
        [
            loaded.layout,
            loaded.source,
            loaded.cpu_unit,
            loaded.mem_unit,
            loaded.rows,
            loaded.skipped,
            loaded.skipped_why,
        ],
    )
    return loaded


def sources(db: duckdb.DuckDBPyConnection, name: str) -> list[Loaded]:
    """What was loaded into `{name}_usage`, with its units."""
    rows = db.execute(
        "select layout, source, cpu_unit, mem_unit, rows, skipped, skipped_why "
        f"from {name}_sources order by rowid"
    ).fetchall()
    return [Loaded(*row) for row in rows]
