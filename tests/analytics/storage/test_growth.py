"""Growth between two snapshots: two namespaces built by hand with known differences, each
figure worked out here from the entries; the shared fsimages; `fleetops storage growth`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetops.analytics.storage.entries import Entry, EntryWriter
from fleetops.analytics.storage.growth import compare
from fleetops.analytics.storage.readers import read_input
from fleetops.analytics.storage.schemas import Growth, GrowthOptions, ShareGrowth
from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_NOT_FOUND
from tests.fixtures.server import cli_env, cli_ok, run_cli

THEN = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
NOW = THEN + timedelta(days=10)
MB = 1024 * 1024
GB = 1024 * MB
DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "fsimage"
SMALL, LATER = DATA / "fsi_small.img", DATA / "fsi_small_h2x.img"


def file(path: str, size: int, *, owner: str, rep: int = 3, mtime: datetime = THEN) -> Entry:
    return Entry(path, "file", size, rep, 1, mtime - timedelta(days=1), None, owner, "g")


def directory(path: str, mtime: datetime) -> Entry:
    return Entry(path, "dir", 0, 0, 0, mtime, None, "hdfs", "supergroup")


def directories(*paths: str, mtime: datetime) -> list[Entry]:
    return [directory(path, mtime) for path in paths]


COMMON = ("/", "/user", "/user/alice", "/user/bob", "/data", "/data/logs")
BEFORE = [
    *directories(*COMMON, "/data/archive", mtime=THEN),  # /data/archive goes
    file("/user/alice/a.csv", 100 * MB, owner="alice"),  # stays as it is
    file("/user/alice/b.csv", 50 * MB, owner="alice"),  # removed
    file("/user/bob/x.bin", 10 * MB, owner="bob", rep=2),  # grows to 30 MB
    file("/data/logs/l1", 1000, owner="etl"),  # stays
    file("/data/logs/l2", 2000, owner="etl"),  # rewritten, the same size
    file("/data/archive/old.bin", 5 * GB, owner="etl"),  # removed
]
AFTER = [
    *directories(*COMMON, "/data/new", "/tmp", mtime=NOW),  # two directories new
    file("/user/alice/a.csv", 100 * MB, owner="alice"),
    file("/user/alice/c.csv", 200 * MB, owner="alice", mtime=NOW),  # added
    file("/user/bob/x.bin", 30 * MB, owner="bob", rep=2, mtime=NOW),
    file("/data/logs/l1", 1000, owner="etl"),
    file("/data/logs/l2", 2000, owner="etl", mtime=NOW),
    file("/data/new/n.parquet", GB, owner="etl", mtime=NOW),  # added
    file("/tmp/t", 7, owner="carol", rep=1, mtime=NOW),  # added, one level deep
]


def entries(path: Path, namespace: list[Entry]) -> Path:
    with EntryWriter(path) as writer:
        writer.extend(namespace)
    return path


def files_of(namespace: list[Entry]) -> list[Entry]:
    return [e for e in namespace if e.kind == "file"]


@pytest.fixture
def growth(tmp_path: Path) -> Growth:
    before = entries(tmp_path / "before.parquet", BEFORE)
    after = entries(tmp_path / "after.parquet", AFTER)
    return compare(before, after, GrowthOptions(), names=("then", "now"))


def test_totals_then_and_now(growth: Growth) -> None:
    assert (growth.before.input, growth.after.input) == ("then", "now")
    assert (growth.before.files, growth.before.directories) == (6, 7)
    assert (growth.after.files, growth.after.directories) == (7, 8)
    assert growth.before.bytes == 160 * MB + 3000 + 5 * GB
    assert growth.after.bytes == 330 * MB + 3000 + GB + 7
    assert growth.before.raw_bytes == sum(e.size * e.replication for e in files_of(BEFORE))
    assert growth.after.raw_bytes == sum(e.size * e.replication for e in files_of(AFTER))
    delta = growth.delta
    assert (delta.files, delta.directories) == (1, 1)
    assert delta.bytes == 170 * MB + 7 - 4 * GB
    assert delta.raw_bytes == growth.after.raw_bytes - growth.before.raw_bytes
    # alice +150 MB at 3 replicas, bob +20 MB at 2, etl -4 GB at 3, carol +7 at 1
    assert delta.raw_bytes == 3 * 150 * MB + 2 * 20 * MB - 3 * 4 * GB + 7


def test_the_span_is_between_the_newest_mtimes_and_gives_a_rate(growth: Growth) -> None:
    assert (growth.before.newest_mtime, growth.after.newest_mtime) == (THEN, NOW)
    assert growth.span_days == 10
    assert growth.rate is not None
    assert growth.rate.files_per_day == 0.1
    assert growth.rate.bytes_per_day == (170 * MB + 7 - 4 * GB) / 10
    assert growth.rate.raw_bytes_per_day == growth.delta.raw_bytes / 10


def test_paths_added_removed_and_changed(growth: Growth) -> None:
    paths = growth.paths
    assert (paths.added_files, paths.added_bytes) == (3, 200 * MB + GB + 7)
    assert (paths.removed_files, paths.removed_bytes) == (2, 50 * MB + 5 * GB)
    # x.bin grew, l2 was rewritten at the same size: both changed; a.csv and l1 did not
    assert paths.changed_files == 2
    assert (paths.changed_bytes_before, paths.changed_bytes_after) == (
        10 * MB + 2000,
        30 * MB + 2000,
    )
    assert paths.unchanged_files == 2
    assert (paths.added_directories, paths.removed_directories) == (2, 1)
    # every byte of the delta is in an added, removed or changed file
    assert growth.delta.bytes == (
        paths.added_bytes
        - paths.removed_bytes
        + paths.changed_bytes_after
        - paths.changed_bytes_before
    )


def share(name: str, files: tuple[int, int], size: tuple[int, int]) -> ShareGrowth:
    return ShareGrowth(
        name=name,
        files_before=files[0],
        files_after=files[1],
        files_delta=files[1] - files[0],
        bytes_before=size[0],
        bytes_after=size[1],
        bytes_delta=size[1] - size[0],
    )


def test_owners_that_grew_and_shrank(growth: Growth) -> None:
    assert growth.owners.grew == [
        share("alice", (2, 2), (150 * MB, 300 * MB)),
        share("bob", (1, 1), (10 * MB, 30 * MB)),
        share("carol", (0, 1), (0, 7)),
    ]
    assert growth.owners.shrank == [share("etl", (3, 3), (3000 + 5 * GB, 3000 + GB))]


def test_directories_at_a_depth(growth: Growth, tmp_path: Path) -> None:
    # /data/logs did not change in bytes: in neither list
    assert growth.directories.grew == [
        share("/data/new", (0, 1), (0, GB)),
        share("/user/alice", (2, 2), (150 * MB, 300 * MB)),
        share("/user/bob", (1, 1), (10 * MB, 30 * MB)),
        share("/tmp", (0, 1), (0, 7)),  # a file one level deep counts in its directory
    ]
    assert growth.directories.shrank == [share("/data/archive", (1, 0), (5 * GB, 0))]
    top = compare(
        tmp_path / "before.parquet", tmp_path / "after.parquet", GrowthOptions(depth=1, top=1)
    )
    assert top.directories.grew == [share("/user", (3, 3), (160 * MB, 330 * MB))]
    assert top.directories.shrank == [share("/data", (3, 3), (3000 + 5 * GB, 3000 + GB))]
    assert [s.name for s in top.owners.grew] == ["alice"]


def test_a_snapshot_against_itself_has_no_growth_and_no_rate(tmp_path: Path) -> None:
    before = entries(tmp_path / "before.parquet", BEFORE)
    same = compare(before, before, GrowthOptions())
    assert same.delta.model_dump() == {"files": 0, "directories": 0, "bytes": 0, "raw_bytes": 0}
    assert (same.span_days, same.rate) == (0, None)
    assert same.paths.unchanged_files == 6
    assert same.paths.added_files + same.paths.removed_files + same.paths.changed_files == 0
    assert (same.owners.grew, same.directories.shrank) == ([], [])


def test_an_empty_snapshot_has_no_span(tmp_path: Path) -> None:
    empty = entries(tmp_path / "empty.parquet", [])
    after = entries(tmp_path / "after.parquet", AFTER)
    growth = compare(empty, after, GrowthOptions())
    assert (growth.before.newest_mtime, growth.span_days, growth.rate) == (None, None, None)
    assert (growth.paths.added_files, growth.paths.added_directories) == (7, 8)
    assert growth.delta.bytes == growth.after.bytes


@pytest.mark.skipif(not LATER.is_file(), reason=f"{LATER} (the shared data) is absent")
def test_two_real_fsimages(tmp_path: Path) -> None:
    then = read_input(SMALL, tmp_path / "then.parquet")
    now = read_input(LATER, tmp_path / "now.parquet")
    growth = compare(tmp_path / "then.parquet", tmp_path / "now.parquet", GrowthOptions())
    assert growth.delta.files == now.files - then.files == 5
    assert growth.delta.directories == now.directories - then.directories == 6
    assert growth.delta.bytes == now.bytes - then.bytes == 8_397_824
    # /datalake is new: a 1 KiB and four 2 MiB files; every older file was rewritten (its
    # mtime is of 2019), two of them at another size (4,145,152 -> 4 MiB, 5,181,440 -> 5,140,480)
    paths = growth.paths
    assert (paths.added_files, paths.added_bytes) == (5, 1024 + 4 * 2 * MB)
    assert (paths.removed_files, paths.changed_files, paths.unchanged_files) == (0, 11, 0)
    assert paths.changed_bytes_after - paths.changed_bytes_before == 4 * MB - 4_145_152 - 40_960
    assert growth.span_days is not None
    assert 625 < growth.span_days < 626  # 2017-07-08 06:00 to 2019-03-25 23:28
    itself = compare(tmp_path / "then.parquet", tmp_path / "then.parquet", GrowthOptions())
    assert itself.delta.bytes == itself.paths.changed_files == 0
    assert itself.paths.unchanged_files == then.files


LISTING_BEFORE = """path,size,mtime,owner,group,kind,replication
/data,0,2026-01-10T12:00:00Z,hdfs,hadoop,dir,0
/data/a.csv,100,2026-01-09T00:00:00Z,alice,g,file,3
/data/b.csv,40,2026-01-09T00:00:00Z,bob,g,file,3
"""
LISTING_AFTER = """path,size,mtime,owner,group,kind,replication
/data,0,2026-01-12T12:00:00Z,hdfs,hadoop,dir,0
/data/a.csv,250,2026-01-12T00:00:00Z,alice,g,file,3
/data/c.csv,10,2026-01-12T00:00:00Z,carol,g,file,3
"""


def test_the_command_compares_two_listings(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "before.csv").write_text(LISTING_BEFORE)
    (tmp_path / "after.csv").write_text(LISTING_AFTER)
    env = cli_env(db_url, tmp_path / "data")
    args = ("storage", "growth", str(tmp_path / "before.csv"), str(tmp_path / "after.csv"))
    growth = json.loads(cli_ok(env, *args, "-o", "json", "--depth", "1"))
    assert growth["delta"] == {"files": 0, "directories": 0, "bytes": 120, "raw_bytes": 360}
    assert growth["span_days"] == 2
    assert growth["rate"]["bytes_per_day"] == 60
    paths = growth["paths"]
    assert (paths["added_files"], paths["removed_files"], paths["changed_files"]) == (1, 1, 1)
    assert (paths["changed_bytes_before"], paths["changed_bytes_after"]) == (100, 250)
    assert [(s["name"], s["bytes_delta"]) for s in growth["owners"]["grew"]] == [
        ("alice", 150),
        ("carol", 10),
    ]
    assert [(s["name"], s["bytes_delta"]) for s in growth["owners"]["shrank"]] == [("bob", -40)]
    assert growth["directories"]["grew"][0]["name"] == "/data"
    assert set(growth["seconds"]) == {"read", "compare"}
    table = cli_ok(env, *args)
    assert "before.csv -> after.csv: +0 files, +0 directories, +120 B (+360 B with replicas)" in (
        table
    )
    assert "2.0 days, +60 B a day" in table


def test_a_bad_second_input_is_refused_as_analyze_refuses_it(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "before.csv").write_text(LISTING_BEFORE)
    env = cli_env(db_url, tmp_path / "data")
    odd = tmp_path / "notes.txt"
    odd.write_text("hello\n")
    unknown = run_cli(env, "storage", "growth", str(tmp_path / "before.csv"), str(odd))
    assert unknown.returncode == EXIT_ERROR
    assert "notes.txt: cannot tell what this input is" in unknown.stderr
    assert unknown.stdout == ""
    missing = run_cli(
        env, "storage", "growth", str(tmp_path / "before.csv"), str(tmp_path / "later.csv")
    )
    assert missing.returncode == EXIT_NOT_FOUND
    assert "later.csv: no such file" in missing.stderr
    analyzed = run_cli(env, "storage", "analyze", str(odd))
    assert (analyzed.returncode, analyzed.stderr) == (unknown.returncode, unknown.stderr)
