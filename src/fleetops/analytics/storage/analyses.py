"""The namespace analyses: DuckDB over the entries' Parquet file, so a namespace of hundreds of
millions of entries is analysed on one machine without loading it into Python.

Each analysis is one aggregate query; what a fix would save is computed in the same query from
the entries themselves (bytes × replication), never from samples:

- **recycle bins**: HDFS `/user/<u>/.Trash/Current` and its checkpoints (`.Trash/<yyMMddHHmmss>`),
  and any other `.Trash`/`.Trash-<uid>`; a trash inside a trash is *layered*;
  checkpoints older than a retention are what shortening `fs.trash.interval` would free;
- **small files** (under a threshold): their share of the namespace and the NameNode heap they
  take (~150 bytes per inode and per block, the usual sizing rule), and the objects merging each
  directory's small files into block-sized files would save;
- **cold data** (not accessed, or modified where access times are off, for N days): what
  RS-6-3 erasure coding (1.5× raw instead of the replication factor) would free;
- **replication**: overhead, and files above the target factor;
- the top owners and top-level directories by raw bytes.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from fleetops.analytics.storage.schemas import (
    ColdData,
    Finding,
    Options,
    RecycleBins,
    Replication,
    Report,
    Share,
    SmallFiles,
    Totals,
    TrashBin,
)

NAMENODE_BYTES_PER_OBJECT = 150
EC_RAW_FACTOR = 1.5  # RS-6-3: 9 blocks stored for 6 of data
RAW = "size * greatest(replication, 1)"

# The trash views: a file is in a recycle bin when a path component is `.Trash` or
# `.Trash-<uid>`; the user is the directory holding the outermost `.Trash` (HDFS's
# `/user/<u>/.Trash/`, a home directory's), the owner for a `.Trash-<uid>`.
TRASH = r"""
create or replace temp view trash as
select *,
  coalesce(nullif(regexp_extract(path, '/([^/]+)/\.Trash/', 1), ''), owner) as user,
  -- a checkpoint of the outermost trash only: the trash emptier never looks deeper
  case when regexp_full_match(bin, '[0-9]{12}') then try_strptime(bin, '%y%m%d%H%M%S') end
    as checkpoint,
  (length(path) - length(replace(path, '/.Trash', ''))) > 7 as layered
from (select *, regexp_extract(path, '^.*?/\.Trash(?:-[0-9]+)?/([^/]+)', 1) as bin
      from entries
      -- `contains` first: a plain search spares most paths the regular expression
      where kind = 'file' and contains(path, '/.Trash')
        and regexp_matches(path, '/\.Trash(-[0-9]+)?/'))
"""


MEMORY_LIMIT = "2GB"  # hundreds of millions of entries: aggregates spill rather than grow


def spill_directory(parquet: Path) -> Path:
    """Where DuckDB spills what does not fit in MEMORY_LIMIT: beside the entries, on their disk."""
    return parquet.parent / f".{parquet.name}.spill"


def connect(parquet: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with `entries` over the file (its files, directories, symlinks),
    bounded in memory, on every core."""
    db = duckdb.connect()
    db.execute("set timezone = 'UTC'")
    db.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    db.execute(f"set threads = {os.cpu_count() or 1}")
    spill = str(spill_directory(parquet)).replace("'", "''")
    db.execute(f"set temp_directory = '{spill}'")
    escaped = str(parquet).replace("'", "''")
    db.execute(f"create view entries as select * from read_parquet('{escaped}')")
    return db


def _one(
    db: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...]:
    row = db.execute(sql, params or []).fetchone()
    assert row is not None  # an aggregate always answers one row
    return tuple(0 if v is None else v for v in row)


def totals(db: duckdb.DuckDBPyConnection) -> Totals:
    files, dirs, links, size, raw, blocks = _one(
        db,
        f"""select count(*) filter (kind = 'file'), count(*) filter (kind = 'dir'),
                   count(*) filter (kind = 'symlink'), sum(size) filter (kind = 'file'),
                   sum({RAW}) filter (kind = 'file'), sum(blocks) filter (kind = 'file')
            from entries""",
    )
    return Totals(
        files=files, directories=dirs, symlinks=links, bytes=size, raw_bytes=raw, blocks=blocks
    )


def recycle_bins(db: duckdb.DuckDBPyConnection, options: Options) -> RecycleBins:
    db.execute(TRASH)
    cutoff = options.now - timedelta(hours=options.trash_retention_hours)
    bins = [
        TrashBin(
            user=user,
            current_bytes=int(current or 0),
            checkpoints=int(checkpoints or 0),
            checkpoint_bytes=int(in_checkpoints or 0),
            raw_bytes=int(raw or 0),
            oldest=oldest,
            layered_bytes=int(layered or 0),
        )
        for user, current, checkpoints, in_checkpoints, raw, oldest, layered in db.execute(
            f"""select user, sum(size) filter (bin = 'Current'),
                       count(distinct bin) filter (checkpoint is not null),
                       sum(size) filter (checkpoint is not null), sum({RAW}), min(checkpoint),
                       sum(size) filter (layered)
                from trash group by user order by sum({RAW}) desc, user"""
        ).fetchall()
    ]
    files, size, raw, layered_files, layered_raw, over = _one(
        db,
        f"""select count(*), sum(size), sum({RAW}), count(*) filter (layered),
                   sum({RAW}) filter (layered), sum({RAW}) filter (checkpoint < ?)
            from trash""",
        [cutoff.replace(tzinfo=None)],
    )
    return RecycleBins(
        bins=bins,
        files=files,
        bytes=size,
        raw_bytes=raw,
        layered_files=layered_files,
        layered_raw_bytes=layered_raw,
        over_retention_raw_bytes=over,
    )


def _shares(
    db: duckdb.DuckDBPyConnection, by: str, where: str, top: int, order: str
) -> list[Share]:
    rows = db.execute(
        f"""select {by} as name, count(*) as files, sum(size) as bytes, sum({RAW}) as raw
            from entries where kind = 'file' and {where}
            group by name order by {order} desc, name limit {int(top)}"""
    ).fetchall()
    return _share_list(rows)


def _share_list(rows: list[tuple[Any, ...]]) -> list[Share]:
    return [
        Share(name=n or "/", files=int(f), bytes=int(b or 0), raw_bytes=int(r or 0))
        for n, f, b, r in rows
    ]


# An entry's directory: the path up to its last '/' (the root's for `/x`). For the absolute paths
# of entries this is `regexp_replace(path, '/[^/]*$', '')`, at two thirds of the cost.
PARENT = "coalesce(nullif(parse_dirpath(path, '/'), ''), '/')"


def small_files(db: duckdb.DuckDBPyConnection, options: Options, total_objects: int) -> SmallFiles:
    small = f"size < {int(options.small_file_bytes)}"
    files, size, blocks = _one(
        db,
        f"select count(*), sum(size), sum(greatest(blocks, 1)) from entries "
        f"where kind = 'file' and {small}",
    )
    # Merging a directory's n small files (b bytes) into ceil(b / block) files saves their
    # inodes and their blocks: two objects per file merged away.
    (mergeable,) = _one(
        db,
        f"""select sum(2 * greatest(n - greatest(ceil(b / {int(options.block_bytes)}), 1), 0))
            from (select count(*) as n, sum(size) as b from entries
                  where kind = 'file' and {small} group by {PARENT})""",
    )
    return SmallFiles(
        files=files,
        bytes=size,
        share_of_namespace=round(files / total_objects, 4) if total_objects else 0.0,
        namenode_bytes=NAMENODE_BYTES_PER_OBJECT * (files + blocks),
        mergeable_objects=int(mergeable),
        by_directory=_shares(db, PARENT, small, options.top, "files"),
        by_owner=_shares(db, "owner", small, options.top, "files"),
    )


def cold_data(db: duckdb.DuckDBPyConnection, options: Options) -> ColdData:
    # An access time of 0 (or before 1971) means the NameNode does not record them: use mtime.
    touched = "coalesce(case when atime > timestamptz '1971-01-01' then atime end, mtime)"
    cutoff = (options.now - timedelta(days=options.cold_days)).isoformat()
    cold = f"{touched} < timestamptz '{cutoff}'"
    files, size, raw, ec = _one(
        db,
        f"""select count(*), sum(size), sum({RAW}),
                   sum(size * greatest(replication - {EC_RAW_FACTOR}, 0))
                     filter (size >= {int(options.small_file_bytes)})
            from entries where kind = 'file' and {cold}""",
    )
    return ColdData(
        files=files,
        bytes=size,
        raw_bytes=raw,
        by_owner=_shares(db, "owner", cold, options.top, "raw"),
        erasure_coding_savings=int(ec),
    )


def replication(db: duckdb.DuckDBPyConnection, options: Options, total: Totals) -> Replication:
    target = int(options.target_replication)
    files, savings = _one(
        db,
        f"""select count(*), sum(size * (replication - {target}))
            from entries where kind = 'file' and replication > {target}""",
    )
    return Replication(
        overhead_bytes=total.raw_bytes - total.bytes,
        over_replicated_files=files,
        over_replicated_savings=int(savings),
    )


# The first two names of a directory (`/user/alice` of `/user/alice/x/`, `/data` of `/data/`),
# of a path ending in '/'; '/' for the root.
TOP_DIRECTORY = r"coalesce(nullif(regexp_extract(path, '^(/[^/]+(/[^/]+)?)/', 1), ''), '/')"


def top_owners(db: duckdb.DuckDBPyConnection, options: Options) -> list[Share]:
    return _shares(db, "owner", "true", options.top, "raw")


def top_directories(db: duckdb.DuckDBPyConnection, options: Options) -> list[Share]:
    """By the first two levels of the path (`/user/alice`, `/data/logs`): each directory's files
    summed first, so the regular expression runs once a directory, not once a file."""
    rows = db.execute(
        f"""select {TOP_DIRECTORY} as name, sum(files), sum(bytes), sum(raw_bytes) as raw
            from (select {PARENT} || '/' as path, count(*) as files, sum(size) as bytes,
                         sum({RAW}) as raw_bytes
                  from entries where kind = 'file' group by all)
            group by name order by raw desc, name limit {int(options.top)}"""
    ).fetchall()
    return _share_list(rows)


def findings(
    options: Options,
    bins: RecycleBins,
    small: SmallFiles,
    cold: ColdData,
    rep: Replication,
) -> list[Finding]:
    """What would save something, disk first and largest first; each with how it is done."""
    found = [*_trash_findings(options, bins), *_data_findings(options, small, cold, rep)]
    return sorted(found, key=lambda f: (f.resource != "disk", -f.savings_bytes))


def _trash_findings(options: Options, bins: RecycleBins) -> list[Finding]:
    found: list[Finding] = []
    hours = options.trash_retention_hours
    if bins.over_retention_raw_bytes:
        found.append(
            Finding(
                kind="trash_retention",
                title=f"Trash checkpoints older than {hours:g} h",
                detail=f"{len(bins.bins)} users' recycle bins hold {bins.files} files; the "
                f"checkpoints older than {hours:g} h would be gone with a {hours:g} h retention",
                savings_bytes=bins.over_retention_raw_bytes,
                action=f"set fs.trash.interval = {round(hours * 60)} (minutes) in core-site.xml, "
                "then `hdfs dfs -expunge` as each user",
            )
        )
    if bins.layered_raw_bytes:
        found.append(
            Finding(
                kind="layered_trash",
                title="Trash inside the trash",
                detail=f"{bins.layered_files} files were deleted from within a recycle bin and "
                "kept again in a trash inside it",
                savings_bytes=bins.layered_raw_bytes,
                action="remove the inner .Trash directories with `hdfs dfs -rm -r -skipTrash`",
            )
        )
    return found


def _data_findings(
    options: Options, small: SmallFiles, cold: ColdData, rep: Replication
) -> list[Finding]:
    found: list[Finding] = []
    if cold.erasure_coding_savings:
        found.append(
            Finding(
                kind="cold_data",
                title=f"Data untouched for {options.cold_days} days",
                detail=f"{cold.files} cold files; stored with RS-6-3 erasure coding they would "
                f"take {EC_RAW_FACTOR:g}x their size instead of their replication",
                savings_bytes=cold.erasure_coding_savings,
                action="`hdfs ec -setPolicy -policy RS-6-3-1024k -path DIR`; rewrite its files",
            )
        )
    if rep.over_replicated_savings:
        found.append(
            Finding(
                kind="over_replication",
                title=f"Files replicated more than {options.target_replication} times",
                detail=f"{rep.over_replicated_files} files",
                savings_bytes=rep.over_replicated_savings,
                action=f"`hdfs dfs -setrep {options.target_replication} PATH`",
            )
        )
    if small.mergeable_objects:
        found.append(
            Finding(
                kind="small_files",
                title=f"{small.files} small files",
                detail=f"files under {options.small_file_bytes} bytes are "
                f"{small.share_of_namespace:.1%} of the namespace; merging each directory's "
                f"into block-sized files removes {small.mergeable_objects} inodes and blocks",
                savings_bytes=small.mergeable_objects * NAMENODE_BYTES_PER_OBJECT,
                resource="namenode_heap",
                action="compact the directories (rewrite with a coalesce, or `hadoop archive`)",
            )
        )
    return found


def analyze(parquet: Path, options: Options, *, name: str) -> Report:
    """Every analysis of one namespace, and its findings."""
    db = connect(parquet)
    try:
        total = totals(db)
        bins = recycle_bins(db, options)
        small = small_files(db, options, total.files + total.directories)
        cold = cold_data(db, options)
        rep = replication(db, options, total)
        return Report(
            input=name,
            options=options,
            totals=total,
            recycle_bins=bins,
            small_files=small,
            cold_data=cold,
            replication=rep,
            top_owners=top_owners(db, options),
            top_directories=top_directories(db, options),
            findings=findings(options, bins, small, cold, rep),
        )
    finally:
        db.close()
        shutil.rmtree(spill_directory(parquet), ignore_errors=True)
