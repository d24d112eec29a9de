"""Growth between two snapshots of one namespace: what grew, what shrank, and how fast.

Both snapshots are entries' Parquet files (any input `read_input` takes, read twice). Every
figure is a DuckDB aggregate or join over the two files, never a Python loop over entries, so
two namespaces of hundreds of millions of entries compare on one machine: the join of their
paths spills to a temporary directory past a memory limit instead of failing.

- totals then and now, and their deltas; files only for bytes, as the analyses count them;
- the span between the snapshots, told by the newest mtime in each (when it was taken is in no
  listing; a snapshot is no older than its newest entry), and the growth per day over it;
- per owner and per directory at a depth (`/user/alice` at 2): before, after, delta;
- paths joined: files added, removed, changed (same path, another size or mtime).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb

from fleetops.analytics.storage.schemas import (
    Growth,
    GrowthOptions,
    GrowthRate,
    Movers,
    PathChanges,
    ShareGrowth,
    Snapshot,
    TotalsDelta,
)

MEMORY_LIMIT = "2GB"  # the path join spills past it: two huge namespaces fit a small machine
RAW = "size * greatest(replication, 1)"
SECONDS_PER_DAY = 86_400


def connect(before: Path, after: Path, *, spill: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views `before` and `after` over the two entries' files."""
    db = duckdb.connect(
        config={
            "memory_limit": MEMORY_LIMIT,
            "temp_directory": str(spill),
            "preserve_insertion_order": False,  # no order is kept: less memory for the join
        }
    )
    db.execute("set timezone = 'UTC'")
    for name, parquet in (("before", before), ("after", after)):
        escaped = str(parquet).replace("'", "''")
        db.execute(f"create view {name} as select * from read_parquet('{escaped}')")
    return db


def _one(db: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = db.execute(sql).fetchone()
    assert row is not None  # an aggregate always answers one row
    return tuple(row)


def snapshot(db: duckdb.DuckDBPyConnection, view: str, *, name: str) -> Snapshot:
    """One snapshot's totals and its newest mtime."""
    files, dirs, size, raw, newest = _one(
        db,
        f"""select count(*) filter (kind = 'file'), count(*) filter (kind = 'dir'),
                   sum(size) filter (kind = 'file'), sum({RAW}) filter (kind = 'file'),
                   max(mtime)
            from {view}""",
    )
    return Snapshot(
        input=name,
        files=files,
        directories=dirs,
        bytes=int(size or 0),
        raw_bytes=int(raw or 0),
        newest_mtime=newest,
    )


def span_days(before: Snapshot, after: Snapshot) -> float | None:
    """Days between the snapshots' newest mtimes; none when either holds no entry."""
    if before.newest_mtime is None or after.newest_mtime is None:
        return None
    return (after.newest_mtime - before.newest_mtime).total_seconds() / SECONDS_PER_DAY


def rate(delta: TotalsDelta, days: float | None) -> GrowthRate | None:
    """The deltas per day; none when the span is unknown or not positive (no time to divide)."""
    if days is None or days <= 0:
        return None
    return GrowthRate(
        files_per_day=round(delta.files / days, 6),
        bytes_per_day=round(delta.bytes / days, 6),
        raw_bytes_per_day=round(delta.raw_bytes / days, 6),
    )


def directory_at(depth: int) -> str:
    """SQL for a file's directory `depth` levels down (`/user/alice` at 2); a file nearer the
    root counts in its own directory (`/tmp` for `/tmp/x`, `/` for `/x`)."""
    return (
        rf"coalesce(nullif(regexp_extract(path, '^((?:/[^/]+){{1,{int(depth)}}})/', 1), ''), '/')"
    )


def movers(db: duckdb.DuckDBPyConnection, by: str, top: int) -> Movers:
    """Files and bytes by `by` in each snapshot; the `top` that grew most, and shrank most."""
    db.execute(
        f"""create or replace temp table shares as
            with b as (select {by} as name, count(*) as files, sum(size) as bytes
                       from before where kind = 'file' group by name),
                 a as (select {by} as name, count(*) as files, sum(size) as bytes
                       from after where kind = 'file' group by name)
            select coalesce(a.name, b.name) as name,
                   coalesce(b.files, 0) as files_before, coalesce(a.files, 0) as files_after,
                   coalesce(b.bytes, 0) as bytes_before,
                   coalesce(a.bytes, 0) as bytes_after
            from b full join a on a.name = b.name"""
    )
    columns = """name, files_before, files_after, files_after - files_before,
                 bytes_before, bytes_after, bytes_after - bytes_before as delta"""
    grew = db.execute(
        f"select {columns} from shares where bytes_after > bytes_before "
        f"order by delta desc, name limit {int(top)}"
    ).fetchall()
    shrank = db.execute(
        f"select {columns} from shares where bytes_after < bytes_before "
        f"order by delta, name limit {int(top)}"
    ).fetchall()
    db.execute("drop table shares")
    return Movers(grew=[_share(row) for row in grew], shrank=[_share(row) for row in shrank])


def _share(row: tuple[Any, ...]) -> ShareGrowth:
    name, files_before, files_after, files_delta, before, after, delta = row
    return ShareGrowth(
        name=name if name is not None else "",
        files_before=files_before,
        files_after=files_after,
        files_delta=files_delta,
        bytes_before=int(before),
        bytes_after=int(after),
        bytes_delta=int(delta),
    )


def path_changes(db: duckdb.DuckDBPyConnection) -> PathChanges:
    """Files and directories joined on path (a path that changed kind is removed and added)."""
    row = _one(
        db,
        """select
             count(*) filter (kind = 'file' and not in_before),
             sum(a_size) filter (kind = 'file' and not in_before),
             count(*) filter (kind = 'file' and not in_after),
             sum(b_size) filter (kind = 'file' and not in_after),
             count(*) filter (kind = 'file' and changed),
             sum(b_size) filter (kind = 'file' and changed),
             sum(a_size) filter (kind = 'file' and changed),
             count(*) filter (kind = 'file' and in_before and in_after and not changed),
             count(*) filter (kind = 'dir' and not in_before),
             count(*) filter (kind = 'dir' and not in_after)
           from (select coalesce(a.kind, b.kind) as kind, b.size as b_size, a.size as a_size,
                        b.path is not null as in_before, a.path is not null as in_after,
                        coalesce(a.size <> b.size or a.mtime is distinct from b.mtime, false)
                          and b.path is not null and a.path is not null as changed
                 from (select path, kind, size, mtime from before where kind in ('file', 'dir')) b
                 full join (select path, kind, size, mtime from after
                            where kind in ('file', 'dir')) a
                   on a.path = b.path and a.kind = b.kind)""",
    )
    added, added_bytes, removed, removed_bytes, changed, was, now, same, dirs_in, dirs_out = (
        int(v or 0) for v in row
    )
    return PathChanges(
        added_files=added,
        added_bytes=added_bytes,
        removed_files=removed,
        removed_bytes=removed_bytes,
        changed_files=changed,
        changed_bytes_before=was,
        changed_bytes_after=now,
        unchanged_files=same,
        added_directories=dirs_in,
        removed_directories=dirs_out,
    )


def compare(
    before: Path,
    after: Path,
    options: GrowthOptions,
    *,
    names: tuple[str, str] | None = None,
    spill: Path | None = None,
) -> Growth:
    """What grew and what shrank from the entries at `before` to those at `after`.

    `names` label the snapshots (the files' names by default); `spill` is where DuckDB writes
    what exceeds its memory limit (a temporary directory of its own by default)."""
    labels = names or (before.name, after.name)
    with tempfile.TemporaryDirectory(prefix="fleetops-growth-") as own:
        db = connect(before, after, spill=spill or Path(own))
        try:
            then = snapshot(db, "before", name=labels[0])
            now = snapshot(db, "after", name=labels[1])
            delta = TotalsDelta(
                files=now.files - then.files,
                directories=now.directories - then.directories,
                bytes=now.bytes - then.bytes,
                raw_bytes=now.raw_bytes - then.raw_bytes,
            )
            days = span_days(then, now)
            return Growth(
                options=options,
                before=then,
                after=now,
                delta=delta,
                span_days=None if days is None else round(days, 6),
                rate=rate(delta, days),
                paths=path_changes(db),
                owners=movers(db, "owner", options.top),
                directories=movers(db, directory_at(options.depth), options.top),
            )
        finally:
            db.close()
