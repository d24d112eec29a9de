"""The namespace analyses on a namespace built by hand, each figure worked out here from the
entries, not from the code under test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetops.analytics.storage.analyses import NAMENODE_BYTES_PER_OBJECT, analyze
from fleetops.analytics.storage.entries import Entry, EntryWriter
from fleetops.analytics.storage.schemas import Options, Report

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MB = 1024 * 1024
GB = 1024 * MB
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def file(
    path: str,
    size: int,
    *,
    rep: int = 3,
    owner: str = "alice",
    age_days: float = 1,
    atime: datetime | None = None,
) -> Entry:
    mtime = NOW - timedelta(days=age_days)
    return Entry(path, "file", size, rep, max(1, -(-size // (128 * MB))), mtime, atime, owner, "g")


def directory(path: str) -> Entry:
    return Entry(path, "dir", 0, 0, 0, NOW, None, "hdfs", "supergroup")


def checkpoint(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).strftime("%y%m%d%H%M%S")


OLD, RECENT = checkpoint(72), checkpoint(6)  # with a 24 h retention: one goes, one stays
NAMESPACE = [
    directory("/"),
    directory("/user"),
    directory("/user/alice"),
    directory("/user/bob"),
    directory("/data"),
    directory("/data/logs"),
    # alice's trash: Current, an old and a recent checkpoint, and a trash inside the trash
    file("/user/alice/.Trash/Current/user/alice/a.csv", 10 * MB),
    file(f"/user/alice/.Trash/{OLD}/user/alice/old.csv", 100 * MB),
    file(f"/user/alice/.Trash/{RECENT}/user/alice/new.csv", 20 * MB),
    file(f"/user/alice/.Trash/{OLD}/user/alice/.Trash/Current/x.csv", 5 * MB, rep=2),
    # bob's: one old checkpoint
    file(f"/user/bob/.Trash/{OLD}/user/bob/b.bin", GB, owner="bob"),
    # carol's: an old checkpoint deleted into Current: layered, and no checkpoint of hers (the
    # trash emptier looks at the outermost trash only)
    file(f"/user/carol/.Trash/Current/user/carol/.Trash/{OLD}/y.bin", 7 * MB, owner="carol"),
    # live data: 4 small log files in one directory, cold big files, one over-replicated file
    *(file(f"/data/logs/part-{i}", 1000, owner="etl") for i in range(4)),
    file("/data/cold.bin", 2 * GB, owner="etl", age_days=400, atime=EPOCH),  # atime off: mtime
    file("/data/warm.bin", GB, owner="etl", age_days=400, atime=NOW - timedelta(days=2)),
    file("/data/hot.jar", 3 * MB, rep=10, owner="etl"),
]


@pytest.fixture
def report(tmp_path: Path) -> Report:
    parquet = tmp_path / "ns.parquet"
    with EntryWriter(parquet) as writer:
        writer.extend(NAMESPACE)
    return analyze(parquet, Options(now=NOW, trash_retention_hours=24), name="hand-built")


def test_totals(report: Report) -> None:
    files = [e for e in NAMESPACE if e.kind == "file"]
    assert report.totals.files == 13
    assert report.totals.directories == 6
    assert report.totals.bytes == sum(e.size for e in files)
    assert report.totals.raw_bytes == sum(e.size * e.replication for e in files)


def test_recycle_bins_per_user_with_layers_and_what_a_shorter_retention_frees(
    report: Report,
) -> None:
    bins = {b.user: b for b in report.recycle_bins.bins}
    alice, bob = bins["alice"], bins["bob"]
    assert alice.current_bytes == 10 * MB
    assert alice.checkpoints == 2
    assert alice.checkpoint_bytes == (100 + 20 + 5) * MB
    assert alice.raw_bytes == (10 + 100 + 20) * 3 * MB + 5 * 2 * MB
    assert alice.layered_bytes == 5 * MB
    assert alice.oldest is not None
    assert alice.oldest.replace(tzinfo=UTC) == (NOW - timedelta(hours=72)).replace(microsecond=0)
    assert bob.raw_bytes == 3 * GB
    carol = bins["carol"]
    assert (carol.current_bytes, carol.checkpoints, carol.layered_bytes) == (7 * MB, 0, 7 * MB)
    assert [b.user for b in report.recycle_bins.bins] == ["bob", "alice", "carol"]  # raw bytes
    assert report.recycle_bins.layered_raw_bytes == 10 * MB + 21 * MB
    # The 72 h checkpoints go with a 24 h retention: alice's old.csv and the layered x.csv, bob's.
    assert report.recycle_bins.over_retention_raw_bytes == 300 * MB + 10 * MB + 3 * GB


def test_small_files_their_heap_and_what_merging_saves(report: Report) -> None:
    small = report.small_files
    assert small.files == 4  # the log parts; 3 MB and 5 MB files are not under 1 MiB
    assert small.bytes == 4000
    assert small.share_of_namespace == round(4 / 19, 4)
    assert small.namenode_bytes == NAMENODE_BYTES_PER_OBJECT * (4 + 4)  # 4 inodes, 4 blocks
    assert small.mergeable_objects == 2 * (4 - 1)  # into one file: 3 inodes, 3 blocks fewer
    assert [(d.name, d.files) for d in small.by_directory] == [("/data/logs", 4)]


def test_cold_data_by_access_time_or_modification_time(report: Report) -> None:
    cold = report.cold_data
    assert cold.files == 1  # cold.bin (atime off, old mtime); warm.bin was read 2 days ago
    assert cold.raw_bytes == 6 * GB
    assert cold.erasure_coding_savings == int(2 * GB * 1.5)  # 3x → 1.5x


def test_over_replication_and_the_findings_largest_first(report: Report) -> None:
    assert report.replication.over_replicated_files == 1
    assert report.replication.over_replicated_savings == 3 * MB * 7
    kinds = [(f.kind, f.savings_bytes, f.resource) for f in report.findings]
    assert kinds == [
        ("trash_retention", 300 * MB + 10 * MB + 3 * GB, "disk"),
        ("cold_data", 3 * GB, "disk"),
        ("layered_trash", 31 * MB, "disk"),
        ("over_replication", 21 * MB, "disk"),
        ("small_files", 6 * NAMENODE_BYTES_PER_OBJECT, "namenode_heap"),
    ]
    assert "fs.trash.interval = 1440" in report.findings[0].action


def test_top_owners_and_directories_by_raw_bytes(report: Report) -> None:
    assert [o.name for o in report.top_owners] == ["etl", "bob", "alice", "carol"]
    # By their first two levels: /data's own files, then /data/logs and /user/<u> apart.
    top = {d.name: d for d in report.top_directories}
    assert report.top_directories[0].name == "/data"
    assert (top["/data"].files, top["/data"].raw_bytes) == (3, (2 + 1) * 3 * GB + 3 * MB * 10)
    assert (top["/data/logs"].files, top["/data/logs"].raw_bytes) == (4, 4 * 3000)
