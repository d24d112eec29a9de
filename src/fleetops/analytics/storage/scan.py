"""A scan of a local or mounted filesystem, streamed into the entry shape every input shares.

One `os.scandir` walk with an explicit stack of directories still to read: nothing but that
stack and one directory's iterator is held, so a tree of a hundred million entries costs the
memory of its pending directories, not of its entries. Symlinks are recorded, never followed;
other filesystems mounted below the root are recorded as their mount point directory and not
entered (like `find -xdev`) unless asked. A directory that cannot be read is counted and named
in the summary, and the walk goes on: one bad directory must not lose a whole scan.

What each column holds for a local file:

- `size`: `st_size` of a regular file; 0 for a directory or a symlink (the entry shape's rule:
  a directory's `st_size` is its own listing, a filesystem detail, not data).
- `replication`: 1 (0 for a directory, as HDFS readers write it).
- `blocks`: 0. The column counts HDFS blocks; `st_blocks` counts 512-byte units, which would
  mean something else there (and overflow its int32 at 1 TiB). The allocated space of the
  whole scan is in `ScanSummary.allocated_bytes` instead.
- `mtime`, `atime`: from `lstat`, to the millisecond.
- `owner`, `group`: names from the password and group databases, looked up once per id;
  the number itself where the id has no name (an image of another machine's disk).
"""

from __future__ import annotations

import grp
import os
import pwd
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fleetops.analytics.storage.entries import Entry, EntryWriter, Kind
from fleetops.analytics.storage.exceptions import InputError

PROGRESS_EVERY = 50_000  # entries between two progress calls
KEEP_PROBLEMS = 100  # unreadable directories named in the summary (all are counted)
_STAMP_CACHE = 65_536  # distinct millisecond times kept: files unpacked together share them

_TYPE = 0o170000  # stat.S_IFMT, inlined: the walk tests every entry's type
_DIR, _FILE, _LINK = 0o040000, 0o100000, 0o120000


@dataclass(slots=True)
class ScanSummary:
    """What a scan wrote and what it could not read; passed to `progress` while it runs."""

    root: str
    entries: int = 0  # rows written: files + dirs + symlinks
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0  # sizes of the regular files, each hard-linked file once
    allocated_bytes: int = 0  # st_blocks x 512 of every entry written, each inode once
    hardlinks: int = 0  # further names of a file already written (rows, not counted in bytes)
    special: int = 0  # fifos, sockets and device nodes: not namespace data, not written
    other_filesystems: int = 0  # mount points below the root, written but not entered
    vanished: int = 0  # listed, then gone before they could be read (a live filesystem)
    escaped_names: int = 0  # paths not valid UTF-8, written with \\xNN for the bad bytes
    unreadable: int = 0  # directories (or entries) that could not be read
    problems: list[tuple[str, str]] = field(default_factory=list)  # first KEEP_PROBLEMS
    seconds: float = 0.0

    def problem(self, path: str, exc: OSError) -> None:
        self.unreadable += 1
        if len(self.problems) < KEEP_PROBLEMS:
            self.problems.append((_printable(path), exc.strerror or type(exc).__name__))


Progress = Callable[[ScanSummary], None]


def scan(
    root: Path,
    writer: EntryWriter,
    *,
    progress: Progress | None = None,
    cross_filesystems: bool = False,
) -> ScanSummary:
    """Write one entry per file, directory and symlink under `root` (the root included).

    The root itself may be a symlink to a directory (it is what was asked for, like
    `find -H`); nothing below it is followed. Paths are absolute as on the scanned host."""
    started = time.perf_counter()
    top = os.path.abspath(root)
    try:
        st = os.stat(top)
    except OSError as exc:
        raise InputError(exc.strerror or "cannot be read", where=top) from exc
    if st.st_mode & _TYPE != _DIR:
        raise InputError("not a directory", where=top)
    walk = _Walk(writer, ScanSummary(top), None if cross_filesystems else st.st_dev)
    walk.write(top, "dir", st)
    stack = [top]
    next_report = PROGRESS_EVERY
    while stack:
        walk.read(stack.pop(), stack)
        if progress is not None and walk.summary.entries >= next_report:
            progress(walk.summary)
            next_report = walk.summary.entries + PROGRESS_EVERY
    walk.summary.seconds = time.perf_counter() - started
    if progress is not None:
        progress(walk.summary)
    return walk.summary


class _Walk:
    """The state one scan carries: the writer, the counts and the name and time caches."""

    def __init__(self, writer: EntryWriter, summary: ScanSummary, device: int | None) -> None:
        self.writer = writer
        self.summary = summary
        self.device = device  # None: cross into other filesystems
        self.owners: dict[int, str] = {}
        self.groups: dict[int, str] = {}
        self.stamps: dict[int, datetime] = {}
        self.linked: set[tuple[int, int]] = set()  # (dev, ino) of files with several names

    def read(self, path: str, stack: list[str]) -> None:
        """Write the entries of one directory; push the subdirectories to read later."""
        summary = self.summary
        try:
            listing = os.scandir(path)
        except FileNotFoundError:
            summary.vanished += 1
            return
        except OSError as exc:
            summary.problem(path, exc)
            return
        with listing:
            try:
                for item in listing:
                    try:
                        st = item.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        summary.vanished += 1
                        continue
                    except OSError as exc:
                        summary.problem(item.path, exc)
                        continue
                    kind = st.st_mode & _TYPE
                    if kind == _FILE:
                        self.write(item.path, "file", st)
                    elif kind == _DIR:
                        self.write(item.path, "dir", st)
                        if self.device is None or st.st_dev == self.device:
                            stack.append(item.path)
                        else:
                            summary.other_filesystems += 1
                    elif kind == _LINK:
                        self.write(item.path, "symlink", st)
                    else:
                        summary.special += 1
            except OSError as exc:  # the listing itself failed part way (EIO, a stale mount)
                summary.problem(path, exc)

    def write(self, path: str, kind: Kind, st: os.stat_result) -> None:
        """Write one entry and count it."""
        summary = self.summary
        size = 0
        if kind == "file":
            size = st.st_size
            summary.files += 1
            if st.st_nlink > 1 and not self._first_name(st):
                summary.hardlinks += 1
            else:
                summary.bytes += size
                summary.allocated_bytes += st.st_blocks * 512
        else:
            summary.allocated_bytes += st.st_blocks * 512
            if kind == "dir":
                summary.dirs += 1
            else:
                summary.symlinks += 1
        if not path.isascii():
            path = self._utf8(path)
        owner = self.owners.get(st.st_uid) or self._owner(st.st_uid)
        group = self.groups.get(st.st_gid) or self._group(st.st_gid)
        mtime = self._stamp(st.st_mtime_ns)
        atime = mtime if st.st_atime_ns == st.st_mtime_ns else self._stamp(st.st_atime_ns)
        self.writer.add(
            Entry(path, kind, size, 0 if kind == "dir" else 1, 0, mtime, atime, owner, group)
        )
        summary.entries += 1

    def _first_name(self, st: os.stat_result) -> bool:
        """Whether this is the first name seen of a file with several (only those are kept)."""
        key = (st.st_dev, st.st_ino)
        if key in self.linked:
            return False
        self.linked.add(key)
        return True

    def _stamp(self, ns: int) -> datetime:
        ms = ns // 1_000_000
        found = self.stamps.get(ms)
        if found is None:
            if len(self.stamps) >= _STAMP_CACHE:
                self.stamps.clear()
            found = self.stamps[ms] = _datetime(ms)
        return found

    def _owner(self, uid: int) -> str:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        self.owners[uid] = name
        return name

    def _group(self, gid: int) -> str:
        try:
            name = grp.getgrgid(gid).gr_name
        except KeyError:
            name = str(gid)
        self.groups[gid] = name
        return name

    def _utf8(self, path: str) -> str:
        try:
            path.encode()
        except UnicodeEncodeError:
            self.summary.escaped_names += 1
            return _printable(path)
        return path


def _datetime(ms: int) -> datetime:
    """A stat time as UTC; one beyond what `datetime` holds is clamped, not fatal."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC) if ms > 0 else datetime.min.replace(tzinfo=UTC)


def _printable(path: str) -> str:
    """A path as valid UTF-8: bytes that are not become `\\xNN` (os functions return them as
    surrogates, which Parquet's strings cannot hold)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
