"""A filesystem scan writes exactly the tree's entries, reads through what it cannot read, and
stays on its filesystem and off symlinks."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.exceptions import InputError
from fleetops.analytics.storage.scan import ScanSummary, scan
from tests.analytics.storage.trees import NEW, OLD, Tree, sample_tree, trash_tree

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def scanned(root: Path, out: Path, **options: bool) -> tuple[ScanSummary, list[tuple[Any, ...]]]:
    with EntryWriter(out) as writer:
        summary = scan(root, writer, **options)
    rows = duckdb.sql(
        'select path, kind, size, replication, blocks, epoch_ms(mtime), owner, "group" '
        f"from '{out}' order by path"
    ).fetchall()
    return summary, rows


def ms(when: datetime) -> int:
    return int(when.timestamp()) * 1000 + when.microsecond // 1000


def expected_rows(tree: Tree) -> list[tuple[str, str, int, int, int]]:
    rows = [(tree.absolute(p), "file", size, 1, 0) for p, size in tree.files.items()]
    rows += [(tree.absolute(p), "dir", 0, 0, 0) for p in tree.dirs]
    rows += [(tree.absolute(p), "symlink", 0, 1, 0) for p in tree.symlinks]
    return sorted(rows)


def test_a_scan_writes_every_file_dir_and_symlink_and_nothing_else(tmp_path: Path) -> None:
    tree = sample_tree(tmp_path / "root")
    os.mkfifo(tree.root / "pipe")  # not namespace data: counted, not written
    tree.finish()  # the fifo changed the root's mtime
    summary, rows = scanned(tree.root, tmp_path / "e.parquet")

    assert [r[:5] for r in rows] == expected_rows(tree)
    assert not any("outside" in r[0] for r in rows), "a symlink to a directory was followed"
    times = {r[0]: r[5] for r in rows}
    for relative, mtime in tree.mtimes.items():
        assert times[tree.absolute(relative)] == ms(mtime), relative
    assert {(r[6], r[7]) for r in rows} == {(ME, MY_GROUP)}
    assert (summary.files, summary.dirs, summary.symlinks) == (4, 3, 3)
    assert summary.entries == len(rows) == 10
    assert summary.bytes == 10 + 1234 + 65_536
    assert summary.special == 1
    assert (summary.unreadable, summary.vanished, summary.hardlinks) == (0, 0, 0)
    assert summary.allocated_bytes >= 65_536  # what the filesystem gave; tmpfs rounds up


def test_the_times_are_the_files_own_to_the_millisecond(tmp_path: Path) -> None:
    tree = sample_tree(tmp_path / "root")
    _, rows = scanned(tree.root, tmp_path / "e.parquet")
    by_path = {r[0]: r[5] for r in rows}
    assert by_path[tree.absolute("docs/guide.md")] == ms(OLD)
    assert by_path[tree.absolute("a.txt")] == ms(NEW)
    atime = duckdb.sql(
        f"select epoch_ms(atime) from '{tmp_path / 'e.parquet'}' where path like '%guide.md'"
    ).fetchall()
    assert atime == [(ms(OLD),)]


def test_a_hard_linked_file_is_a_row_per_name_and_its_bytes_count_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "one").write_bytes(b"y" * 300)
    os.link(root / "one", root / "two")
    summary, rows = scanned(root, tmp_path / "e.parquet")
    assert [(r[0], r[2]) for r in rows if r[1] == "file"] == [
        (str(root / "one"), 300),
        (str(root / "two"), 300),
    ]
    assert (summary.files, summary.bytes, summary.hardlinks) == (2, 300, 1)


def test_a_name_that_is_not_utf8_is_written_with_its_bad_bytes_escaped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "sub").mkdir()
    open(os.path.join(os.fsencode(root / "sub"), b"caf\xe9"), "wb").close()
    summary, rows = scanned(root, tmp_path / "e.parquet")
    assert str(root / "sub" / "caf\\xe9") in [r[0] for r in rows]
    assert summary.escaped_names == 1


SCAN_WITHOUT_OVERRIDE = """
import json, sys
from pathlib import Path
from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.scan import scan
with EntryWriter(Path(sys.argv[2])) as writer:
    summary = scan(Path(sys.argv[1]), writer)
print(json.dumps([summary.unreadable, summary.problems]))
"""


def scanned_unprivileged(root: Path, out: Path) -> tuple[int, list[list[str]]]:
    """Root reads any directory (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): scan in a process
    whose capability bounding set lacks both, so modes bind it as they bind any user."""
    if os.geteuid() != 0:
        with EntryWriter(out) as writer:
            summary = scan(root, writer)
        return summary.unreadable, [list(p) for p in summary.problems]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("as root, an unreadable directory needs setpriv (util-linux) to drop DAC")
    drop = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    done = subprocess.run(
        [*drop, sys.executable, "-c", SCAN_WITHOUT_OVERRIDE, str(root), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    unreadable, problems = json.loads(done.stdout)
    return unreadable, problems


def test_an_unreadable_directory_is_counted_and_named_and_the_rest_is_scanned(
    tmp_path: Path,
) -> None:
    tree = sample_tree(tmp_path / "root")
    locked = tree.root / "docs" / "deep"
    locked.chmod(0)
    try:
        unreadable, problems = scanned_unprivileged(tree.root, tmp_path / "e.parquet")
    finally:
        locked.chmod(0o755)
    assert unreadable == 1
    assert problems == [[str(locked), "Permission denied"]]
    paths = [r[0] for r in duckdb.sql(f"select path from '{tmp_path / 'e.parquet'}'").fetchall()]
    assert str(locked) in paths  # listed by its parent, not read
    assert str(locked / "data.bin") not in paths
    assert str(tree.root / "docs" / "guide.md") in paths


def _mount_below(top: str) -> str | None:
    """A mount point strictly below `top` (from this process's mount table), if any."""
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        points = [line.split()[4] for line in table]
    below = [p for p in points if p.startswith(top + "/") and os.path.isdir(p)]
    for point in sorted(below, key=len):
        if os.stat(point).st_dev != os.stat(top).st_dev:
            return point
    return None


def test_a_scan_stays_on_its_filesystem(tmp_path: Path) -> None:
    point = _mount_below("/dev")
    if point is None:
        pytest.skip("no filesystem is mounted below /dev here (e.g. /dev/shm)")
    summary, rows = scanned(Path("/dev"), tmp_path / "e.parquet")
    paths = [r[0] for r in rows]
    assert point in paths  # the mount point itself is an entry of /dev
    assert not [p for p in paths if p.startswith(point + "/")]
    assert summary.other_filesystems >= 1
    assert summary.special >= 1  # /dev/null at least
    crossed, _ = scanned(Path("/dev"), tmp_path / "all.parquet", cross_filesystems=True)
    assert crossed.other_filesystems == 0
    assert crossed.entries >= summary.entries


def test_progress_is_told_the_counts(tmp_path: Path) -> None:
    tree = sample_tree(tmp_path / "root")
    seen: list[int] = []
    with EntryWriter(tmp_path / "e.parquet") as writer:
        scan(tree.root, writer, progress=lambda s: seen.append(s.entries))
    assert seen[-1] == 10


def test_a_root_that_is_missing_or_not_a_directory_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for root, problem in [(tmp_path / "nope", "No such file"), (tmp_path / "file", "not a dir")]:
        with (
            pytest.raises(InputError, match=problem) as caught,
            EntryWriter(tmp_path / "e.parquet") as writer,
        ):
            scan(root, writer)
        assert caught.value.where == str(root)
        assert not (tmp_path / "e.parquet").exists()


def test_the_trash_tree_scans_as_built(tmp_path: Path) -> None:
    tree = trash_tree(tmp_path / "ns")
    summary, rows = scanned(tree.root, tmp_path / "e.parquet")
    assert [r[:5] for r in rows] == expected_rows(tree)
    trash = [r for r in rows if "/.Trash/" in r[0] and r[1] == "file"]
    assert sum(r[2] for r in trash) == 1000 + 4096 + 2048 + 512 + 10_000
    assert summary.bytes == 1000 + 4096 + 2048 + 512 + 10_000 + 300 + 700
