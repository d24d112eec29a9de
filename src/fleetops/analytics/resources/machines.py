"""Machines (Alibaba cluster-trace-v2018 layout) read into DuckDB, strictly, never into Python rows.

`machine_meta*.csv[.gz]`: machine_id, time_stamp, failure_domain_1, failure_domain_2, cpu_num,
mem_size, status: one row per change of a machine's state, so a machine has several; its
attributes are those of its latest row that gives them. `machine_usage*.csv[.gz]`: machine_id,
time_stamp, cpu_util_percent, mem_util_percent, mem_gps, mpki, net_in, net_out,
disk_io_percent: one sample a minute or so per machine. No header; empty fields are missing
values (the sample's mem_gps and mpki are mostly empty, a few failure_domain_2 too), allowed
where a column says so.

As `traces` does: DuckDB reads each file strictly (exact field count, typed columns, required
fields present, utilisation within 0-100); a file it refuses is scanned by Python to name the
file and line.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from fleetops.analytics.resources.exceptions import TraceError, TraceNotFound
from fleetops.analytics.resources.traces import literal


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a machine file: its DuckDB type, whether it may be empty, its range."""

    name: str
    kind: str = "DOUBLE"  # VARCHAR, BIGINT or DOUBLE
    required: bool = False
    low: float | None = None
    high: float | None = None


META_COLUMNS = (
    Column("machine_id", "VARCHAR", required=True),
    Column("time_stamp", "BIGINT", required=True, low=0),
    Column("failure_domain_1", "VARCHAR"),
    Column("failure_domain_2", "VARCHAR"),
    Column("cpu_num", "BIGINT", low=0),
    Column("mem_size", low=0),
    Column("status", "VARCHAR"),
)
USAGE_COLUMNS = (
    Column("machine_id", "VARCHAR", required=True),
    Column("time_stamp", "BIGINT", required=True, low=0),
    Column("cpu_util_percent", low=0, high=100),
    Column("mem_util_percent", low=0, high=100),
    # Not used here, only typed: the sample's disk_io_percent runs from -1 to 101.
    Column("mem_gps"),
    Column("mpki"),
    Column("net_in"),
    Column("net_out"),
    Column("disk_io_percent"),
)
FILES = {"machine_meta": META_COLUMNS, "machine_usage": USAGE_COLUMNS}


def find_files(directory: Path) -> dict[str, tuple[Path, ...]]:
    """The machine files of `directory` by kind; TraceNotFound when it holds none of a kind."""
    if not directory.is_dir():
        raise TraceNotFound(f"{directory}: no such directory")
    found = {}
    for kind in FILES:
        files = tuple(
            sorted(p for p in directory.glob(f"{kind}*") if p.name.endswith((".csv", ".csv.gz")))
        )
        if not files:
            raise TraceNotFound(f"{directory}: no {kind}*.csv or {kind}*.csv.gz")
        found[kind] = files
    return found


def load(
    db: duckdb.DuckDBPyConnection,
    directory: Path,
    *,
    name: str,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Read the machine files of `directory` into `{name}_machine_meta`, `{name}_machine_usage`."""
    for kind, paths in find_files(directory).items():
        columns = FILES[kind]
        table = f"{name}_{kind}"
        db.execute(f"create or replace table {table} ({_ddl(columns)})")
        for path in paths:
            if progress:
                progress(f"reading {path.name}")
            _append(db, table, path, columns)


def _ddl(columns: tuple[Column, ...]) -> str:
    return ", ".join(f"{c.name} {c.kind}" for c in columns)


def _append(
    db: duckdb.DuckDBPyConnection, table: str, path: Path, columns: tuple[Column, ...]
) -> None:
    """The rows of `path` appended to `table`, or none: a malformed row stops the file."""
    types = ", ".join(f"'{c.name}': '{c.kind}'" for c in columns)
    source = (
        f"read_csv({literal(str(path))}, header = false, auto_detect = false, "
        f"columns = {{{types}}}, delim = ',', quote = '\"', strict_mode = true, "
        "null_padding = false)"
    )
    bad = [f"{c.name} is null" for c in columns if c.required]
    bad += [f"{c.name} < {c.low}" for c in columns if c.low is not None]
    bad += [f"{c.name} > {c.high}" for c in columns if c.high is not None]
    bad += [f"not isfinite({c.name})" for c in columns if c.kind == "DOUBLE"]
    try:
        db.execute(
            f"insert into {table} select * from {source} "
            f"where case when {' or '.join(bad)} then error('a row out of range') else true end"
        )
    except duckdb.Error as exc:
        raise scan(path, columns) or TraceError(f"cannot read: {exc}", where=path.name) from None


def scan(path: Path, columns: tuple[Column, ...]) -> TraceError | None:
    """The first malformed row of a machine file, as an error naming the file and line."""
    try:
        for number, fields in _rows(path):
            where = f"{path.name} line {number}"
            if len(fields) != len(columns):
                return TraceError(f"{len(fields)} fields, expected {len(columns)}", where=where)
            for column, text in zip(columns, fields, strict=True):
                problem = field_problem(column, text)
                if problem:
                    return TraceError(f"{column.name} {text!r}: {problem}", where=where)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        return TraceError(f"unreadable: {exc}", where=path.name)
    return None


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    opened = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    with opened as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        yield from enumerate(csv.reader(text), start=1)


def field_problem(column: Column, text: str) -> str | None:
    """What is wrong with `text` as a value of `column`; None when nothing is."""
    if not text:
        return "empty" if column.required else None
    if column.kind == "VARCHAR":
        return None
    try:
        value = int(text) if column.kind == "BIGINT" else float(text)
    except ValueError:
        return "not an integer" if column.kind == "BIGINT" else "not a number"
    if not math.isfinite(value):
        return "not a finite number"
    if column.low is not None and value < column.low:
        return f"below {column.low:g}"
    if column.high is not None and value > column.high:
        return f"above {column.high:g}"
    return None


def machines_sql(*, name: str) -> str:
    """SQL of one row per machine of the meta table: its latest failure domains, cores, memory
    and status (each from the latest row that gives it)."""
    latest = ", ".join(
        f"arg_max({c}, time_stamp) filter ({c} is not null) as {c}"
        for c in ("failure_domain_1", "failure_domain_2", "cpu_num", "mem_size", "status")
    )
    return f"select machine_id, {latest} from {name}_machine_meta group by machine_id"
