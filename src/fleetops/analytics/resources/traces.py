"""Batch traces (Alibaba cluster-trace-v2018 layout) read into DuckDB, never into Python rows.

A trace directory holds `batch_tasks*.csv[.gz]` (arrival_s, job_id, task_name, duration_s,
plan_cpu, plan_mem, instance_num) and `batch_instances*.csv[.gz]` (arrival_s, job_id, task_name,
instance_name, duration_s, cpu_avg, mem_avg), without a header. CPU is in hundredths of a core
(100 = 1 core), memory normalised (0-100 of a machine). An instance belongs to the task with its
(job_id, task_name); its usage is its average over its run (the trace has no peaks).

DuckDB reads each file strictly (exact field count, typed columns); a file it refuses, or a row
with a negative duration or resource, is then scanned by Python to name the file and line, as
`storage.listings_sql` does for listings: the fast path for the good case, the exact message for
the bad one.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from fleetops.analytics.resources.exceptions import TraceError, TraceNotFound

MEMORY_LIMIT = "2GB"
# name -> (DuckDB type, must be >= 0); None: text
TASK_COLUMNS: dict[str, tuple[str, bool] | None] = {
    "arrival_s": ("DOUBLE", False),
    "job_id": None,
    "task_name": None,
    "duration_s": ("DOUBLE", True),
    "plan_cpu": ("DOUBLE", True),
    "plan_mem": ("DOUBLE", True),
    "instance_num": ("BIGINT", True),
}
INSTANCE_COLUMNS: dict[str, tuple[str, bool] | None] = {
    "arrival_s": ("DOUBLE", False),
    "job_id": None,
    "task_name": None,
    "instance_name": None,
    "duration_s": ("DOUBLE", True),
    "cpu_avg": ("DOUBLE", True),
    "mem_avg": ("DOUBLE", True),
}
# A workload group: what a recommendation is made for.
KEYS = {
    "task": "regexp_extract(t.task_name, '^[A-Za-z]*') || '|' || t.plan_cpu || '|' || t.plan_mem",
    "profile": "t.plan_cpu || '|' || t.plan_mem",
    "job": "t.job_id || '/' || t.task_name",
}


@dataclass(frozen=True, slots=True)
class TraceFiles:
    """The task and instance files of one trace directory."""

    tasks: tuple[Path, ...]
    instances: tuple[Path, ...]


def find_files(directory: Path) -> TraceFiles:
    """The trace files in `directory`; TraceNotFound when it holds none of a kind."""
    if not directory.is_dir():
        raise TraceNotFound(f"{directory}: no such directory")
    found = []
    for kind in ("batch_tasks", "batch_instances"):
        files = tuple(
            sorted(p for p in directory.glob(f"{kind}*") if p.name.endswith((".csv", ".csv.gz")))
        )
        if not files:
            raise TraceNotFound(f"{directory}: no {kind}*.csv or {kind}*.csv.gz")
        found.append(files)
    return TraceFiles(*found)


def connect(spill: Path | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB bounded in memory (spilling to `spill` if given), on every core."""
    db = duckdb.connect()
    db.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    db.execute(f"set threads = {os.cpu_count() or 1}")
    db.execute("set preserve_insertion_order = false")
    if spill is not None:
        db.execute(f"set temp_directory = {literal(str(spill))}")
    return db


def load(db: duckdb.DuckDBPyConnection, directory: Path, *, name: str) -> None:
    """Read the trace at `directory` into tables `{name}_tasks` and `{name}_instances`."""
    files = find_files(directory)
    for table, paths, columns in (
        (f"{name}_tasks", files.tasks, TASK_COLUMNS),
        (f"{name}_instances", files.instances, INSTANCE_COLUMNS),
    ):
        _load_table(db, table, paths, columns)


def _load_table(
    db: duckdb.DuckDBPyConnection,
    table: str,
    paths: tuple[Path, ...],
    columns: dict[str, tuple[str, bool] | None],
) -> None:
    """Each file appended to `table` strictly; a refused file is scanned for its bad line."""
    types = ", ".join(f"'{c}': '{t[0] if t else 'VARCHAR'}'" for c, t in columns.items())
    db.execute(f"create or replace table {table} ({_ddl(columns)})")
    checked = [c for c, t in columns.items() if t and t[1]]
    negative = " or ".join(f"{c} < 0" for c in checked)
    for path in paths:
        source = (
            f"read_csv({literal(str(path))}, header = false, auto_detect = false, "
            f"columns = {{{types}}}, delim = ',', quote = '\"', strict_mode = true, "
            "null_padding = false)"
        )
        try:
            db.execute(
                f"insert into {table} select * from {source} where case when {negative} "
                "or " + " or ".join(f"{c} is null" for c in columns) + " "
                "then error('a row out of range') else true end"
            )
        except duckdb.Error as exc:
            raise scan(path, columns) or TraceError(
                f"cannot read: {exc}", where=path.name
            ) from None


def _ddl(columns: dict[str, tuple[str, bool] | None]) -> str:
    return ", ".join(f"{c} {t[0] if t else 'VARCHAR'}" for c, t in columns.items())


def scan(path: Path, columns: dict[str, tuple[str, bool] | None]) -> TraceError | None:
    """The first malformed row of a trace file, as an error naming the file and line."""
    kinds = list(columns.values())
    names = list(columns)
    try:
        for number, fields in _rows(path):
            where = f"{path.name} line {number}"
            if len(fields) != len(kinds):
                return TraceError(f"{len(fields)} fields, expected {len(kinds)}", where=where)
            for name, kind, text in zip(names, kinds, fields, strict=True):
                problem = _field_problem(kind, text)
                if problem:
                    return TraceError(f"{name} {text!r}: {problem}", where=where)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        return TraceError(f"unreadable: {exc}", where=path.name)
    return None


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    opened = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    with opened as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        yield from enumerate(csv.reader(text), start=1)


def _field_problem(kind: tuple[str, bool] | None, text: str) -> str | None:
    if kind is None:
        return None if text else "empty"
    try:
        value = int(text) if kind[0] == "BIGINT" else float(text)
    except ValueError:
        return "not a number"
    if not math.isfinite(value):
        return "not a finite number"
    if kind[1] and value < 0:
        return "negative"
    return None


def samples(db: duckdb.DuckDBPyConnection, *, trace: str, key: str, where: str = "true") -> str:
    """SQL of the trace's instances joined to their task: group, request and usage per row.

    CPU is in cores (the trace's hundredths divided by 100), memory as the trace normalises it."""
    if key not in KEYS:
        raise ValueError(f"unknown key {key!r}; expected one of {', '.join(KEYS)}")
    return f"""
select i.arrival_s, {KEYS[key]} as grp, {KEYS["profile"]} as profile,
       t.job_id || '/' || t.task_name as task, i.duration_s,
       i.cpu_avg / 100 as cpu, i.mem_avg as mem, t.plan_cpu / 100 as req_cpu, t.plan_mem as req_mem
from {trace}_instances i join {trace}_tasks t using (job_id, task_name)
where {where.replace("arrival_s", "i.arrival_s")}"""


def period(*, split_at: float | None, part: str) -> str:
    """The condition of the training (arrival < split_at) or test (the rest) period."""
    if split_at is None:
        return "true"
    return f"arrival_s < {split_at!r}" if part == "train" else f"arrival_s >= {split_at!r}"


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
