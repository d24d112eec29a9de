"""Google cluster-data 2019 (Borg, "v3") usage, read into `{name}_usage`.

`instance_usage` gives, per instance and 5-minute window (start_time, end_time in microseconds
from the trace's start), its average and maximum usage; `instance_events` the instance's
`resource_request` (the latest at or before the window's start is in force); `collection_events`
(optional) its collection's user and names. Read by column name: CSV with dotted headers
(`average_usage.cpus`) or JSON lines with nested objects, as BigQuery exports them (64-bit
integers as strings). Units are the trace's own: CPU in normalised compute units (NCU) and memory
normalised (NMU), both scaled to the largest machine, so they are recorded as NCU and normalised,
never as cores or GiB. Windows without a request event before them are left out and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from fleetops.analytics.resources.sources import canonical
from fleetops.analytics.resources.sources.files import Field, append_csv, append_jsonl, create

LAYOUT = "google-2019"
CSV_SUFFIXES = (".csv", ".csv.gz")
JSON_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
KINDS = ("instance_usage", "instance_events", "collection_events")
MICROSECONDS = 1e6

USAGE = (
    Field("start_time", "BIGINT", non_negative=True),
    Field("end_time", "BIGINT", non_negative=True),
    Field("collection_id"),
    Field("instance_index"),
    Field("machine_id", optional=True),
    Field("average_usage.cpus", "DOUBLE", non_negative=True),
    Field("average_usage.memory", "DOUBLE", non_negative=True),
    Field("maximum_usage.cpus", "DOUBLE", non_negative=True, optional=True),
    Field("maximum_usage.memory", "DOUBLE", non_negative=True, optional=True),
)
EVENTS = (
    Field("time", "BIGINT", non_negative=True),
    Field("collection_id"),
    Field("instance_index"),
    Field("resource_request.cpus", "DOUBLE", non_negative=True, optional=True),
    Field("resource_request.memory", "DOUBLE", non_negative=True, optional=True),
)
COLLECTIONS = (
    Field("time", "BIGINT", non_negative=True, optional=True),
    Field("collection_id"),
    Field("user", optional=True),
    Field("collection_name", optional=True),
    Field("collection_logical_name", optional=True),
)


def data_files(directory: Path, kind: str) -> tuple[Path, ...]:
    """The CSV and JSON-lines files of one table (`instance_usage*`...) in `directory`."""
    found = directory.glob(f"{kind}*")
    return tuple(sorted(p for p in found if p.name.endswith(CSV_SUFFIXES + JSON_SUFFIXES)))


def _read(
    db: duckdb.DuckDBPyConnection, table: str, paths: Sequence[Path], fields: Sequence[Field]
) -> None:
    create(db, table, fields)
    append_csv(db, table, [p for p in paths if p.name.endswith(CSV_SUFFIXES)], fields, header=True)
    append_jsonl(db, table, [p for p in paths if p.name.endswith(JSON_SUFFIXES)], fields)


def load(
    db: duckdb.DuckDBPyConnection,
    name: str,
    usage: Sequence[Path],
    events: Sequence[Path],
    collections: Sequence[Path],
) -> canonical.Loaded:
    """Read usage windows with the request in force and their collection's names."""
    tables = (f"{name}_raw_usage", f"{name}_raw_events", f"{name}_raw_collections")
    try:
        for table, paths, fields in zip(
            tables, (usage, events, collections), (USAGE, EVENTS, COLLECTIONS), strict=True
        ):
            _read(db, table, paths, fields)
        rows = canonical.append(db, name, _sql(name))
        row = db.execute(f"select count(*) from {tables[0]}").fetchone()
        total = int(row[0]) if row else 0
    finally:
        for table in tables:
            db.execute(f"drop table if exists {table}")
    files = ", ".join(p.name for p in (*usage, *events, *collections))
    why = "windows that end before they start, or without a resource_request event before them"
    return canonical.Loaded(
        LAYOUT, files, canonical.NCU, canonical.NORMALISED, rows, total - rows, why
    )


def _sql(name: str) -> str:
    return f"""
with e as (
  select collection_id, instance_index, time,
         resource_request_cpus as req_cpu, resource_request_memory as req_mem
  from {name}_raw_events
  where resource_request_cpus is not null and resource_request_memory is not null),
c as (
  select collection_id,
         arg_max(user, time) filter (user is not null) as owner,
         arg_max(collection_name, time) filter (collection_name is not null) as collection_name,
         arg_max(collection_logical_name, time) filter (collection_logical_name is not null)
           as logical_name
  from {name}_raw_collections group by collection_id),
w as (
  select u.*, e.req_cpu, e.req_mem
  from {name}_raw_usage u asof join e
    on u.collection_id = e.collection_id and u.instance_index = e.instance_index
   and u.start_time >= e.time
  where u.end_time > u.start_time)
select w.start_time / {MICROSECONDS}, (w.end_time - w.start_time) / {MICROSECONDS},
       w.collection_id, w.collection_id,
       coalesce(c.logical_name, c.collection_name, w.collection_id), c.owner, null,
       w.machine_id, w.collection_id || '/' || w.instance_index, w.req_cpu, w.req_mem,
       w.average_usage_cpus, w.average_usage_memory,
       w.maximum_usage_cpus, w.maximum_usage_memory
from w left join c using (collection_id)"""
