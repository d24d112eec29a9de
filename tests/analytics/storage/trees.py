"""Small directory trees with known contents, built in a test's tmp_path for the storage tests.

Each builder returns what it made (paths relative to the root, '/'-separated, with sizes and
times), so a test states its expectation from the tree, not from the code under test. Times are
fixed: an analysis of age (cold data, trash checkpoints) can assert exact figures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

OLD = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)  # ms precision, as entries keep it
NEW = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)


@dataclass
class Tree:
    """What a builder made under `root`."""

    root: Path
    files: dict[str, int] = field(default_factory=dict)  # relative path -> size in bytes
    dirs: set[str] = field(default_factory=set)  # relative paths, the root itself as ""
    symlinks: dict[str, str] = field(default_factory=dict)  # relative path -> link target
    mtimes: dict[str, datetime] = field(default_factory=dict)  # every file's and dir's mtime

    def absolute(self, relative: str) -> str:
        """The path a scan writes for `relative`."""
        return str(self.root / relative) if relative else str(self.root)

    def file(self, relative: str, size: int, mtime: datetime = NEW) -> None:
        path = self.root / relative
        self._parents(relative, mtime)
        path.write_bytes(b"x" * size)
        self.files[relative] = size
        self._touch(relative, mtime)

    def link(self, relative: str, target: str) -> None:
        self._parents(relative, NEW)
        os.symlink(target, self.root / relative)
        self.symlinks[relative] = target

    def finish(self) -> Tree:
        """Set the directories' times last (adding an entry changes its directory's mtime)."""
        for relative in sorted(self.dirs, key=len, reverse=True):
            self._touch(relative, self.mtimes.get(relative, NEW))
        return self

    def _parents(self, relative: str, mtime: datetime) -> None:
        parts = relative.split("/")[:-1]
        self.root.mkdir(parents=True, exist_ok=True)
        self.dirs.add("")
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            (self.root / parent).mkdir(exist_ok=True)
            self.dirs.add(parent)
            self.mtimes.setdefault(parent, mtime)

    def _touch(self, relative: str, mtime: datetime) -> None:
        ns = int(mtime.timestamp()) * 1_000_000_000 + mtime.microsecond * 1000
        os.utime(self.root / relative, ns=(ns, ns), follow_symlinks=False)
        self.mtimes[relative] = mtime


def sample_tree(root: Path) -> Tree:
    """Files of known sizes (an empty one among them) two levels deep, a symlink to a file, a
    dangling symlink and a symlink to a directory outside the tree that a scan must not follow."""
    tree = Tree(root)
    tree.file("a.txt", 10)
    tree.file("empty", 0)
    tree.file("docs/guide.md", 1234, OLD)
    tree.file("docs/deep/data.bin", 65_536)
    tree.link("docs/latest", "guide.md")
    tree.link("dangling", "no/such/file")
    (root.parent / "outside").mkdir(exist_ok=True)
    (root.parent / "outside" / "secret").write_bytes(b"not scanned")
    tree.link("elsewhere", str(root.parent / "outside"))
    return tree.finish()


def trash_tree(root: Path) -> Tree:
    """An HDFS-style trash layout: users' `.Trash/Current` (deleted recently) and a dated
    checkpoint (`.Trash/250102030405`, deleted earlier), a `.Trash` deleted into a trash (so
    trash nested in trash: its bytes must be counted once, under the outer trash), and live
    data beside it that is in no trash.

    Under /user/alice: 1,000 + 4,096 bytes in Current, 2,048 in the checkpoint, 512 in the
    nested trash; under /user/bob: 10,000 in Current and 300 live; /tmp/scratch.bin (700) live.
    Trash files are OLD, live files NEW."""
    tree = Tree(root)
    alice = "user/alice/.Trash"
    tree.file(f"{alice}/Current/user/alice/logs/app.log", 1000, OLD)
    tree.file(f"{alice}/Current/user/alice/data/part-00000", 4096, OLD)
    tree.file(f"{alice}/250102030405/user/alice/old.csv", 2048, OLD)
    tree.file(f"{alice}/Current/user/alice/.Trash/Current/user/alice/twice.txt", 512, OLD)
    tree.file("user/bob/.Trash/Current/tmp/x.bin", 10_000, OLD)
    tree.file("user/bob/data/live.txt", 300)
    tree.file("tmp/scratch.bin", 700)
    return tree.finish()


# Filesystem images, made in a file without mounting (e2fsprogs, xfsprogs) -------------------

MKFS_EXT4 = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
MKFS_XFS = shutil.which("mkfs.xfs") or "/usr/sbin/mkfs.xfs"
needs_e2fsprogs = pytest.mark.skipif(
    not os.access(MKFS_EXT4, os.X_OK),
    reason="e2fsprogs is not installed (scripts/ensure-test-services)",
)
needs_xfsprogs = pytest.mark.skipif(
    not os.access(MKFS_XFS, os.X_OK),
    reason="xfsprogs is not installed (scripts/ensure-test-services)",
)


def tool(name: str, *args: str | Path) -> str:
    """Run an e2fsprogs/xfsprogs tool; its stdout (C locale, so the labels are the English)."""
    found = shutil.which(name) or f"/usr/sbin/{name}"
    done = subprocess.run(
        [found, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    return done.stdout


def ext4_image(path: Path, size: str, *options: str | Path) -> Path:
    """`mkfs.ext4 -F -q OPTIONS path SIZE`: the image is a sparse file of SIZE."""
    tool("mkfs.ext4", "-F", "-q", *options, path, size)
    return path
