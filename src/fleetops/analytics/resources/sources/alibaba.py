"""Alibaba cluster-trace-v2018 in its three shapes, read into `{name}_usage`.

Units (the trace's schema): CPU in hundredths of a core (100 = 1 core), read as cores; memory
normalised to the largest machine (0-100), kept so. Times in seconds from the trace's start.

- The reformatted batch sample (`batch_tasks*.csv[.gz]` 7 fields, `batch_instances*` 7 fields,
  as the spar package cuts it): one row per instance, its average over its run; no peaks.
- The original batch files (`batch_task.csv` 9 fields, `batch_instance.csv` 14 fields): an
  instance runs from start_time to end_time with cpu_avg/cpu_max and mem_avg/mem_max; instances
  without both times (0 means outside the trace) or without usage are left out and counted.
- The online containers (`container_meta.csv` 8 fields, `container_usage.csv` 11 fields): one row
  per usage sample, lasting until the container's next sample (at most `MAX_GAP` seconds; the last
  sample of a container, of unknown length, is left out). `cpu_util_percent` is a percentage of
  the container's requested CPU (alibaba/clusterdata issue #62) and `mem_util_percent` is read the
  same way, of its `mem_size`; the documented invalid values (-1, 101) are left out. The request in
  force is the container's latest meta row at or before the sample.

The two batch shapes share file names (`batch_task*`): the field count of each file's first row
tells them apart, and every file of a directory must agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from fleetops.analytics.resources.exceptions import TraceError, TraceNotFound
from fleetops.analytics.resources.sources import canonical
from fleetops.analytics.resources.sources.files import Field, first_record, read_csv

SAMPLE, ORIGINAL, CONTAINERS = "alibaba-batch-sample", "alibaba-batch", "alibaba-containers"
MAX_GAP = 300.0  # seconds: a longer silence between two samples is missing data
TASK_TYPE = "regexp_extract({}, '^[A-Za-z]*')"  # M, R, J, task: the name's leading letters

SAMPLE_TASKS = (
    Field("arrival_s", "DOUBLE"),
    Field("job_id"),
    Field("task_name"),
    Field("duration_s", "DOUBLE", non_negative=True),
    Field("plan_cpu", "DOUBLE", non_negative=True),
    Field("plan_mem", "DOUBLE", non_negative=True),
    Field("instance_num", "BIGINT", non_negative=True),
)
SAMPLE_INSTANCES = (
    Field("arrival_s", "DOUBLE"),
    Field("job_id"),
    Field("task_name"),
    Field("instance_name"),
    Field("duration_s", "DOUBLE", non_negative=True),
    Field("cpu_avg", "DOUBLE", non_negative=True),
    Field("mem_avg", "DOUBLE", non_negative=True),
)


def _text(name: str) -> Field:
    return Field(name, optional=True)


def _number(name: str, kind: str = "DOUBLE") -> Field:
    return Field(name, kind, non_negative=True, optional=True)


TASKS = (
    Field("task_name"),
    _text("instance_num"),
    Field("job_name"),
    _text("task_type"),
    _text("status"),
    _number("start_time", "BIGINT"),
    _number("end_time", "BIGINT"),
    _number("plan_cpu"),
    _number("plan_mem"),
)
INSTANCES = (
    Field("instance_name"),
    Field("task_name"),
    Field("job_name"),
    _text("task_type"),
    _text("status"),
    _number("start_time", "BIGINT"),
    _number("end_time", "BIGINT"),
    _text("machine_id"),
    _text("seq_no"),
    _text("total_seq_no"),
    _number("cpu_avg"),
    _number("cpu_max"),
    _number("mem_avg"),
    _number("mem_max"),
)
CONTAINER_META = (
    Field("container_id"),
    _text("machine_id"),
    Field("time_stamp", "DOUBLE"),
    Field("app_du"),
    _text("status"),
    _number("cpu_request"),
    _text("cpu_limit"),
    _number("mem_size"),
)
CONTAINER_USAGE = (
    Field("container_id"),
    _text("machine_id"),
    Field("time_stamp", "DOUBLE"),
    Field("cpu_util_percent", "DOUBLE", optional=True),
    Field("mem_util_percent", "DOUBLE", optional=True),
    *(_text(n) for n in ("cpi", "mem_gps", "mpki", "net_in", "net_out", "disk_io_percent")),
)
# layout -> (task fields, instance fields)
BATCH = {SAMPLE: (SAMPLE_TASKS, SAMPLE_INSTANCES), ORIGINAL: (TASKS, INSTANCES)}


def csv_files(directory: Path, prefix: str) -> tuple[Path, ...]:
    """`prefix*.csv` and `prefix*.csv.gz` in `directory`, sorted."""
    found = (p for p in directory.glob(f"{prefix}*") if p.name.endswith((".csv", ".csv.gz")))
    return tuple(sorted(found))


def batch_layout(tasks: Sequence[Path], instances: Sequence[Path]) -> str:
    """Which batch shape the files hold, by the field count of each file's first row."""
    layouts = set()
    for paths, fields in ((tasks, 0), (instances, 1)):
        for path in paths:
            width = len(first_record(path))
            if width == 0:  # an empty file holds no rows of either layout
                continue
            matching = [name for name, kinds in BATCH.items() if len(kinds[fields]) == width]
            if not matching:
                expected = " or ".join(str(len(kinds[fields])) for kinds in BATCH.values())
                raise TraceError(
                    f"{width} fields, expected {expected}", where=f"{path.name} line 1"
                )
            layouts.add(matching[0])
    if len(layouts) > 1:
        raise TraceError(
            "mixes the reformatted sample (7 fields) and the original trace files (9 and 14 "
            "fields): one layout per directory",
            where=str(tasks[0].parent),
        )
    return layouts.pop() if layouts else SAMPLE


def load_batch(
    db: duckdb.DuckDBPyConnection, name: str, tasks: Sequence[Path], instances: Sequence[Path]
) -> canonical.Loaded:
    """Read batch tasks and instances (either shape) into `{name}_usage`."""
    layout = batch_layout(tasks, instances)
    task_fields, instance_fields = BATCH[layout]
    try:
        read_csv(db, f"{name}_raw_tasks", tasks, task_fields, header=False)
        read_csv(db, f"{name}_raw_instances", instances, instance_fields, header=False)
        select = _sample_sql(name) if layout == SAMPLE else _original_sql(name)
        rows = canonical.append(db, name, select)
        total = _count(db, f"{name}_raw_instances")
    finally:
        db.execute(f"drop table if exists {name}_raw_tasks")
        db.execute(f"drop table if exists {name}_raw_instances")
    why = "instances without a task row"
    if layout == ORIGINAL:
        why += ", without start and end times, or without cpu_avg and mem_avg"
    files = ", ".join(p.name for p in (*tasks, *instances))
    return canonical.Loaded(
        layout, files, canonical.CORES, canonical.NORMALISED, rows, total - rows, why
    )


def _sample_sql(name: str) -> str:
    return f"""
select i.arrival_s, i.duration_s, t.job_id, t.job_id || '/' || t.task_name,
       {TASK_TYPE.format("t.task_name")}, null, null, null, i.instance_name,
       t.plan_cpu / 100, t.plan_mem, i.cpu_avg / 100, i.mem_avg, null, null
from {name}_raw_instances i join {name}_raw_tasks t using (job_id, task_name)"""


def _original_sql(name: str) -> str:
    return f"""
with t as (select distinct on (job_name, task_name) * from {name}_raw_tasks
           where plan_cpu is not null and plan_mem is not null)
select i.start_time, i.end_time - i.start_time, t.job_name, t.job_name || '/' || t.task_name,
       {TASK_TYPE.format("t.task_name")}, null, null, i.machine_id,
       t.job_name || '/' || t.task_name || '/' || i.instance_name,
       t.plan_cpu / 100, t.plan_mem, i.cpu_avg / 100, i.mem_avg, i.cpu_max / 100, i.mem_max
from {name}_raw_instances i join t using (job_name, task_name)
where i.start_time > 0 and i.end_time > i.start_time
  and i.cpu_avg is not null and i.mem_avg is not null"""


def load_containers(
    db: duckdb.DuckDBPyConnection, name: str, meta: Sequence[Path], usage: Sequence[Path]
) -> canonical.Loaded:
    """Read container requests and usage samples into `{name}_usage`."""
    try:
        read_csv(db, f"{name}_raw_meta", meta, CONTAINER_META, header=False)
        read_csv(db, f"{name}_raw_usage", usage, CONTAINER_USAGE, header=False)
        rows = canonical.append(db, name, _containers_sql(name))
        total = _count(db, f"{name}_raw_usage")
    finally:
        db.execute(f"drop table if exists {name}_raw_meta")
        db.execute(f"drop table if exists {name}_raw_usage")
    files = ", ".join(p.name for p in (*meta, *usage))
    why = (
        "each container's last sample (its length is unknown), invalid utilisations (-1, 101, "
        "empty) and samples without a container_meta row with a request at or before them"
    )
    return canonical.Loaded(
        CONTAINERS, files, canonical.CORES, canonical.NORMALISED, rows, total - rows, why
    )


def _containers_sql(name: str) -> str:
    return f"""
with u as (
  select *, lead(time_stamp) over (partition by container_id order by time_stamp) as next_at
  from {name}_raw_usage),
m as (select * from {name}_raw_meta where cpu_request is not null and mem_size is not null)
select u.time_stamp, least(u.next_at - u.time_stamp, {MAX_GAP}), m.app_du, m.app_du, m.app_du,
       null, null, coalesce(u.machine_id, m.machine_id), u.container_id,
       m.cpu_request / 100, m.mem_size,
       u.cpu_util_percent / 100 * m.cpu_request / 100, u.mem_util_percent / 100 * m.mem_size,
       null, null
from u asof join m on u.container_id = m.container_id and u.time_stamp >= m.time_stamp
where u.next_at > u.time_stamp
  and u.cpu_util_percent between 0 and 100 and u.mem_util_percent between 0 and 100"""


def _count(db: duckdb.DuckDBPyConnection, table: str) -> int:
    row = db.execute(f"select count(*) from {table}").fetchone()
    return int(row[0]) if row else 0


def sample_files(directory: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The reformatted sample's task and instance files; TraceNotFound when a kind is missing."""
    if not directory.is_dir():
        raise TraceNotFound(f"{directory}: no such directory")
    found = []
    for kind in ("batch_tasks", "batch_instances"):
        files = csv_files(directory, kind)
        if not files:
            raise TraceNotFound(f"{directory}: no {kind}*.csv or {kind}*.csv.gz")
        found.append(files)
    return found[0], found[1]
