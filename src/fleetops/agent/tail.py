"""Follow files through rotation and truncation, one generation at a time.

A generation is a (device, inode) from the moment it is first seen until it is truncated; its key
(`path#dev:ino:generation`, the `file` sent to the server) never changes, so offsets stay
comparable across restarts. Rotation cases:

- rename (logrotate `create`): the path now names another inode. The old inode stays open and is
  read to its end (and for `rotate_wait` seconds of quiet, for a writer that reopens late) before it
  is closed; the new file at the path is a new generation read from 0.
- copytruncate: the same inode became shorter than what was read, or its first bytes changed. A
  new generation starts at 0; the rest of the old one is read from the rotated copy in the same
  directory (a name starting with the file's name and the same first bytes), if there is one.
- while the agent was down: the checkpoint's inode is looked for in its directory (a renamed
  file) and drained; a truncated generation's copy is looked for the same way.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch

from fleetops.agent.checkpoint import FINGERPRINT_BYTES, Entry, State, fingerprint
from fleetops.agent.progress import Log
from fleetops.agent.reader import READ_CHUNK, Line, Reader

MAX_KEY = 500  # the server keeps 512 characters of `file`
Inode = tuple[int, int]


@dataclass(frozen=True)
class TailOptions:
    patterns: tuple[str, ...]
    excludes: tuple[str, ...] = ()
    from_end: bool = False
    max_line_bytes: int = 1024 * 1024
    rotate_wait: float = 5.0  # seconds of quiet before a rotated-away file is closed
    once: bool = False


def generation_key(path: str, dev: int, ino: int, generation: int) -> str:
    """The `file` value for a generation: readable, unique, and within the server's limit."""
    suffix = f"#{dev}:{ino}:{generation}"
    # A name that is not UTF-8 is kept readable rather than sent as undecodable bytes.
    path = path.encode(errors="surrogateescape").decode(errors="replace")
    room = MAX_KEY - len(suffix)
    if len(path) > room:
        digest = hashlib.sha256(path.encode(errors="surrogateescape")).hexdigest()[:16]
        tail = room - 100 - len(digest) - 2
        path = f"{path[:100]}~{digest}~{path[-tail:]}"
    return path + suffix


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


class Tailer:
    """Every generation being read; hands out lines in per-generation offset order."""

    def __init__(self, options: TailOptions, state: State, log: Log) -> None:
        self.options = options
        self.state = state
        self.log = log
        self.readers: list[Reader] = []
        self.by_inode: dict[Inode, Reader] = {}  # the current generation of each open inode
        self.paths: list[str] = []
        self.path_inode: dict[str, Inode | None] = {}
        self.dirty = False  # entries were added or dropped: the caller saves the state
        self._known_paths = {e.path for e in state.entries.values()}
        self._rr = 0
        self._copy_tried: set[str] = set()

    # --- discovery ------------------------------------------------------------------------

    def rescan(self, *, startup: bool = False) -> None:
        """Expand the patterns again, attach new files, and look for checkpointed generations
        that no watched path holds (renamed, or truncated with a copy)."""
        found: list[str] = []
        for pattern in self.options.patterns:
            pattern = os.path.abspath(os.path.expanduser(pattern))
            if not _is_glob(pattern):
                found.append(pattern)
                continue
            for path in sorted(glob.glob(pattern, recursive=True)):
                name = os.path.basename(path)
                excluded = any(fnmatch(name, ex) for ex in self.options.excludes)
                if not excluded and os.path.isfile(path):
                    found.append(path)
        self.paths = list(dict.fromkeys(found))
        for gone in set(self.path_inode) - set(self.paths):
            self._leave(gone)
        self.check(startup=startup)
        self._recover()

    def check(self, *, startup: bool = False) -> None:
        """Notice rotation and truncation, and close drained files."""
        for path in self.paths:
            inode = self._inode_at(path)
            if inode != self.path_inode.get(path) or path not in self.path_inode:
                if path in self.path_inode:
                    self._leave(path)
                if inode is not None:
                    self._attach(path, startup=startup)
                else:
                    self.path_inode[path] = None
        now = time.monotonic()
        wait = 0.0 if self.options.once else self.options.rotate_wait
        for reader in list(self.readers):
            if reader.fd is None:
                continue
            if not reader.copy and reader.changed():
                self._truncated(reader)
            elif (
                (reader.orphan_since is not None or reader.copy)
                and reader.eof
                and now - max(reader.last_growth, reader.orphan_since or 0) >= wait
            ):
                reader.finish()
                if not reader.copy:
                    reader.entry.drained = True
                    self.dirty = True
        self._prune()

    def _inode_at(self, path: str) -> Inode | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _leave(self, path: str) -> None:
        """`path` no longer names the inode it did: that reader drains, unless another watched
        path still names its inode."""
        inode = self.path_inode.pop(path, None)
        reader = self.by_inode.get(inode) if inode else None
        if reader is None or inode in self.path_inode.values():
            return
        reader.orphan_since = time.monotonic()
        self.log.info(f"{path} was rotated or removed; reading the old file to its end")

    def _attach(self, path: str, *, startup: bool) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            self.path_inode[path] = None
            self.log.warn(f"cannot read {path}: {exc.strerror}", key=f"open:{path}")
            return
        st = os.fstat(fd)
        inode = (st.st_dev, st.st_ino)
        self.path_inode[path] = inode
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self.log.warn(f"{path} is not a regular file; skipped", key=f"open:{path}")
            return
        known = self.by_inode.get(inode)
        if known is not None and known.fd is not None:  # renamed onto a watched path
            os.close(fd)
            known.orphan_since = None
            return
        entry = self._current_entry(inode)
        if entry is not None:
            head = os.pread(fd, entry.fp_len, 0)
            start = max(entry.offset, entry.emitted)
            if known is not None:  # closed while its last lines wait to be sent
                start = known.partial_start
            if len(head) == entry.fp_len and fingerprint(head) == entry.fp:
                if st.st_size >= start:
                    reader = self._open(entry, fd, path, start=start, head=head)
                    reader.blocked_by = known
                    self.log.info(f"resuming {path} ({entry.key}) at offset {start}")
                    return
            if entry.drained and known is None:  # the inode was freed and reused
                self._drop(entry)
            else:
                self._mark_truncated(entry, start=start, after=known)
        start = 0
        if startup and self.options.from_end and path not in self._known_paths:
            start = _last_line_start(fd, st.st_size)
        self._new_generation(path, fd, st, start=start)

    def _current_entry(self, inode: Inode) -> Entry | None:
        matches = [
            e for e in self.state.entries.values() if (e.dev, e.ino) == inode and not e.truncated
        ]
        return max(matches, key=lambda e: e.generation, default=None)

    def _new_generation(self, path: str, fd: int, st: os.stat_result, *, start: int) -> Reader:
        generation = self.state.next_generation(st.st_dev, st.st_ino)
        head = os.pread(fd, min(FINGERPRINT_BYTES, st.st_size), 0)
        entry = Entry(
            key=generation_key(path, st.st_dev, st.st_ino, generation),
            path=path,
            dev=st.st_dev,
            ino=st.st_ino,
            generation=generation,
            offset=start,
            fp=fingerprint(head),
            fp_len=len(head),
            emitted=start,
        )
        self.state.add(entry)
        self.dirty = True
        where = f"from offset {start}" if start else "from the start"
        self.log.info(f"following {path} ({entry.key}) {where}")
        return self._open(entry, fd, path, start=start, head=head)

    def _open(
        self, entry: Entry, fd: int, path: str, *, start: int, head: bytes, copy: bool = False
    ) -> Reader:
        reader = Reader(
            entry,
            fd,
            path=path,
            start=start,
            head=head,
            max_line_bytes=self.options.max_line_bytes,
            copy=copy,
        )
        if not copy:
            self.by_inode[(entry.dev, entry.ino)] = reader
            entry.drained = False
        self.readers.append(reader)
        return reader

    # --- truncation and recovery --------------------------------------------------------------

    def _truncated(self, reader: Reader) -> None:
        """The reader's inode was truncated: a new generation takes it over from 0, and the rest
        of the old one is read from a rotated copy if one exists."""
        assert reader.fd is not None
        fd, old = reader.fd, reader.entry
        reader.fd = None  # handed over to the new generation; `ready` lines still go first
        reader.partial = b""
        self.by_inode.pop((old.dev, old.ino), None)
        self.log.info(f"{reader.path} was truncated (copytruncate); starting a new generation")
        self._mark_truncated(old, start=reader.partial_start, after=reader)
        st = os.fstat(fd)
        new = self._new_generation(reader.path, fd, st, start=0)
        new.orphan_since = reader.orphan_since

    def _mark_truncated(self, entry: Entry, *, start: int, after: Reader | None) -> None:
        entry.truncated = True
        self.dirty = True
        self._copy_tried.add(entry.key)
        found = self._find_copy(entry, start)
        if found is None:
            if entry.fp_len:
                self.log.warn(
                    f"{entry.path}: no rotated copy of {entry.key} found beside it; any "
                    f"lines written after offset {start} before the truncation were not read",
                    key=f"nocopy:{entry.key}",
                )
            return
        fd, path, size = found
        if size <= start:  # everything was read before the truncation
            os.close(fd)
            return
        self.log.info(f"reading the rest of {entry.key} from its rotated copy {path}")
        reader = self._open(entry, fd, path, start=start, head=b"", copy=True)
        reader.blocked_by = after

    def _find_copy(self, entry: Entry, start: int) -> tuple[int, str, int] | None:
        """The newest copy of the generation beside it (a name that starts with the file's name,
        the same first bytes, at least `start` bytes): descriptor, path and size."""
        if entry.fp_len == 0:
            return None
        directory, name = os.path.split(entry.path)
        best: tuple[int, str, os.stat_result] | None = None
        for candidate in _siblings(directory):
            other = os.path.join(directory, candidate)
            if not candidate.startswith(name) or candidate == name or other in self.path_inode:
                continue
            try:
                fd = os.open(other, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError:
                continue
            st = os.fstat(fd)
            if (
                stat.S_ISREG(st.st_mode)
                and (st.st_dev, st.st_ino) != (entry.dev, entry.ino)
                and st.st_size >= start
                and fingerprint(os.pread(fd, entry.fp_len, 0)) == entry.fp
                and (best is None or st.st_mtime_ns > best[2].st_mtime_ns)
            ):
                if best is not None:
                    os.close(best[0])
                best = (fd, other, st)
            else:
                os.close(fd)
        return (best[0], best[1], best[2].st_size) if best else None

    def _recover(self) -> None:
        """Checkpointed generations no reader holds: drain a renamed file that grew past its
        checkpoint, read a truncated one's copy, forget files that are gone or no longer
        watched."""
        active = {id(r.entry) for r in self.readers}
        listings: dict[str, dict[Inode, str]] = {}
        for entry in [e for e in self.state.entries.values() if id(e) not in active]:
            start = max(entry.offset, entry.emitted)
            if entry.truncated:
                if entry.key not in self._copy_tried:  # truncated while the agent was down
                    self._mark_truncated(entry, start=start, after=None)
                elif entry.offset >= entry.emitted:
                    self._drop(entry)
                continue
            directory = os.path.dirname(entry.path)
            if directory not in listings:
                listings[directory] = _inodes(directory)
            path = listings[directory].get((entry.dev, entry.ino))
            if path is None:
                self._drop(entry)  # gone
                continue
            if path == entry.path:  # not rotated: kept if watched (attach decides), else let go
                if path not in self.paths:
                    self._drop(entry)
                continue
            self._drain(entry, path, start)

    def _drain(self, entry: Entry, path: str, start: int) -> None:
        """Read a rotated file from `start` to its end if it grew, under its generation's key."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return
        st = os.fstat(fd)
        head = os.pread(fd, entry.fp_len, 0)
        if (st.st_dev, st.st_ino) != (entry.dev, entry.ino) or fingerprint(head) != entry.fp:
            os.close(fd)
            if (st.st_dev, st.st_ino) == (entry.dev, entry.ino):
                self._drop(entry)  # the same inode, another file: the old one is gone
        elif st.st_size > start:
            self.log.info(f"reading {path} ({entry.key}) to its end from offset {start}")
            reader = self._open(entry, fd, path, start=start, head=head)
            reader.orphan_since = time.monotonic()
        else:
            os.close(fd)

    def _drop(self, entry: Entry) -> None:
        self.state.drop(entry)
        self._copy_tried.discard(entry.key)
        self.dirty = True

    def _prune(self) -> None:
        """Forget finished readers, and truncated generations whose lines are all acknowledged."""
        self.readers = [r for r in self.readers if not r.finished]
        for inode, reader in list(self.by_inode.items()):
            if reader.finished:
                del self.by_inode[inode]
        active = {id(r.entry) for r in self.readers}
        for entry in list(self.state.entries.values()):
            if entry.truncated and id(entry) not in active and entry.offset >= entry.emitted:
                self._drop(entry)

    # --- lines ----------------------------------------------------------------------------

    def take(self, max_lines: int, max_bytes: int) -> list[Line]:
        """Up to `max_lines` lines (about `max_bytes`), round-robin across files; lines left over
        from the previous call go first so at most one file holds read-ahead."""
        out: list[Line] = []
        size = 0
        count = len(self.readers)
        order = sorted(
            (self.readers[(self._rr + i) % count] for i in range(count)),
            key=lambda r: not r.ready,
        )
        self._rr = (self._rr + 1) % max(count, 1)
        for reader in order:
            while len(out) < max_lines and size < max_bytes:
                if not reader.ready:
                    if reader.fd is None or reader.blocked():
                        break
                    if not reader.fill(READ_CHUNK):
                        self._truncated(reader)
                        break
                    if not reader.ready:
                        break
                line = reader.ready.popleft()
                line.entry.emitted = line.end
                out.append(line)
                size += len(line.text or "") + 64
        return out

    def drained(self) -> bool:
        """Everything readable now has been handed out (for `--once`)."""
        return all(
            not r.ready and (r.fd is None or (r.eof and not r.blocked())) for r in self.readers
        )

    def finish_all(self) -> bool:
        """Close every file, completing last lines that lack a newline; True if any remained."""
        left = False
        for reader in self.readers:
            if reader.fd is not None:
                reader.finish()
                left = True
            left = left or bool(reader.ready)
        return left

    def at_end(self) -> bool:
        """Every open reader is at the end of its file."""
        return all(r.fd is None or r.eof for r in self.readers)

    def acked(self, lines: Sequence[Line]) -> None:
        """The server stored `lines`: move their generations' checkpoints past them."""
        for line in lines:
            if line.end > line.entry.offset:
                line.entry.offset = line.end
        self._prune()

    def close(self) -> None:
        for reader in self.readers:
            reader.close()

    @property
    def open_files(self) -> int:
        return sum(1 for r in self.readers if r.fd is not None)


def _last_line_start(fd: int, size: int) -> int:
    """Where the last complete line ends (so `--from-end` starts on a line boundary)."""
    window = min(size, 64 * 1024)
    tail = os.pread(fd, window, size - window)
    newline = tail.rfind(b"\n")
    return size - window + newline + 1 if newline >= 0 else size


def _siblings(directory: str) -> list[str]:
    try:
        return os.listdir(directory or ".")
    except OSError:
        return []


def _inodes(directory: str) -> dict[Inode, str]:
    """The regular files of a directory by inode."""
    found: dict[Inode, str] = {}
    for name in _siblings(directory):
        path = os.path.join(directory, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found.setdefault((st.st_dev, st.st_ino), path)
    return found
