"""Usage traces read into DuckDB, never into Python rows, and the samples every method learns from.

`load` finds which layouts a directory holds (`sources.detect`: the Alibaba 2018 batch sample
as reformatted, the original Alibaba 2018 batch and container files, Google 2019 usage, a plain
usage CSV) and loads them into one table, `{name}_usage` (`sources.canonical`), with a record of
each source's units in `{name}_sources`. `samples` is the SQL every recommender and the replay read:
one row per instance (or usage sample) with its group, request and average usage.

Each file is read strictly by DuckDB (exact field count, typed columns); a file it refuses, or a row
with a negative duration or resource, is then scanned by Python to name the file and line, as
`storage.listings_sql` does for listings: the fast path for the good case, the exact message for
the bad one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from fleetops.analytics.resources.sources import alibaba, canonical, detect
from fleetops.analytics.resources.sources.files import literal

MEMORY_LIMIT = "2GB"
# A workload group: what a recommendation is made for.
KEYS = {
    "task": "task_type || '|' || req_cpu || '|' || req_mem",
    "profile": "req_cpu || '|' || req_mem",
    "job": "task",
}
__all__ = ["KEYS", "TraceFiles", "connect", "find_files", "literal", "load", "period", "samples"]


@dataclass(frozen=True, slots=True)
class TraceFiles:
    """The task and instance files of a reformatted Alibaba batch sample."""

    tasks: tuple[Path, ...]
    instances: tuple[Path, ...]


def find_files(directory: Path) -> TraceFiles:
    """The reformatted sample's files in `directory`; TraceNotFound when it holds none of a kind."""
    return TraceFiles(*alibaba.sample_files(directory))


def connect(spill: Path | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB bounded in memory (spilling to `spill` if given), on every core."""
    db = duckdb.connect()
    db.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    db.execute(f"set threads = {os.cpu_count() or 1}")
    db.execute("set preserve_insertion_order = false")
    db.execute("set TimeZone = 'UTC'")  # a time without an offset is UTC
    if spill is not None:
        db.execute(f"set temp_directory = {literal(str(spill))}")
    return db


def load(db: duckdb.DuckDBPyConnection, path: Path, *, name: str) -> list[canonical.Loaded]:
    """Read the usage at `path` (a directory of any known layout, or a plain usage CSV) into
    `{name}_usage`; what was found, with its units, is returned and kept in `{name}_sources`."""
    return detect.load(db, path, name=name)


def samples(db: duckdb.DuckDBPyConnection, *, trace: str, key: str, where: str = "true") -> str:
    """SQL of the trace's rows: group, request profile, task, duration, usage and request.

    CPU in cores (or the source's NCU), memory in GiB or the source's normalised unit: the units
    `{trace}_sources` records."""
    if key not in KEYS:
        raise ValueError(f"unknown key {key!r}; expected one of {', '.join(KEYS)}")
    return f"""
select arrival_s, {KEYS[key]} as grp, {KEYS["profile"]} as profile, task, duration_s,
       cpu, mem, req_cpu, req_mem
from {trace}_usage
where {where}"""


def period(*, split_at: float | None, part: str) -> str:
    """The condition of the training (arrival < split_at) or test (the rest) period."""
    if split_at is None:
        return "true"
    return f"arrival_s < {split_at!r}" if part == "train" else f"arrival_s >= {split_at!r}"
