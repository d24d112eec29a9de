"""Read one file generation into lines, each with the byte offset the server de-duplicates on.

A reader reads with `pread` at its own position, so the descriptor's offset never matters, and it
keeps holding the inode after the path is renamed or unlinked (rotation), so the old file can be
drained to its end. Lines are complete only with their newline; a line longer than
`max_line_bytes` is cut (at a UTF-8 character boundary) so memory stays bounded.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass

from fleetops.agent.checkpoint import FINGERPRINT_BYTES, Entry, fingerprint

READ_CHUNK = 256 * 1024


@dataclass(slots=True)
class Line:
    """One line (or piece of an over-long line) of a generation; `text` is None for a blank line,
    which is not sent but still moves the checkpoint past it once what precedes it is acknowledged.
    """

    entry: Entry
    offset: int  # the first byte's offset in the generation
    end: int  # the offset after the line (and its newline)
    text: str | None


def _continuation(byte: int) -> bool:
    return 0x80 <= byte < 0xC0


def _cut(buf: bytes, start: int, limit: int) -> int:
    """How many bytes of `buf[start:]` to take so a piece is at most `limit` bytes and does not
    split a UTF-8 character (unless the bytes are not UTF-8 at all)."""
    size = limit
    while size > limit - 3 and _continuation(buf[start + size]):
        size -= 1
    return limit if _continuation(buf[start + size]) else size


class Reader:
    """Turns the bytes of one open file into `Line`s for one generation `entry`.

    A copy reader reads a rotated copy (copytruncate) under the entry of the generation it copies;
    it never checks the copy's start against the entry's fingerprint while reading."""

    def __init__(
        self,
        entry: Entry,
        fd: int,
        *,
        path: str,
        start: int,
        head: bytes,
        max_line_bytes: int,
        copy: bool = False,
    ) -> None:
        self.entry = entry
        self.fd: int | None = fd
        self.path = path
        self.pos = start
        self.head = head  # the file's first bytes as known: a different start means truncation
        self.max_line = max_line_bytes
        self.copy = copy
        self.ready: deque[Line] = deque()
        self.partial = b""
        self.partial_start = start
        self.eof = False
        self.orphan_since: float | None = None  # left every watched path at (monotonic)
        self.last_growth = time.monotonic()
        self.blocked_by: Reader | None = None  # lines of the same entry that must go first
        self._seen: tuple[int, int] = (-1, -1)  # (size, mtime_ns) at the last identity check

    @property
    def finished(self) -> bool:
        return self.fd is None and not self.ready

    def blocked(self) -> bool:
        if self.blocked_by is not None and not self.blocked_by.finished:
            return True
        self.blocked_by = None
        return False

    def fill(self, limit: int = READ_CHUNK) -> bool:
        """Read up to `limit` bytes into lines; False if the file was truncated under us (the
        bytes just read may belong to a new generation, so they are dropped)."""
        assert self.fd is not None
        data = os.pread(self.fd, limit, self.pos)
        if not data:
            self.eof = True
            return True
        if not self.copy and self.head and os.pread(self.fd, len(self.head), 0) != self.head:
            return False
        self.eof = False
        self.pos += len(data)
        self.last_growth = time.monotonic()
        self._split(data)
        return True

    def changed(self) -> bool:
        """Whether the file no longer is this generation: shorter than what was read, or its
        first bytes differ (truncated and written again). Extends the fingerprint while the file
        is shorter than `FINGERPRINT_BYTES`."""
        assert self.fd is not None
        st = os.fstat(self.fd)
        if st.st_size < self.pos:
            return True
        if self.copy or (st.st_size, st.st_mtime_ns) == self._seen:
            return False
        self._seen = (st.st_size, st.st_mtime_ns)
        want = min(FINGERPRINT_BYTES, st.st_size)
        current = os.pread(self.fd, max(want, len(self.head)), 0)
        if not current.startswith(self.head):
            return True
        if len(current) > len(self.head):
            self.head = current
            self.entry.fp, self.entry.fp_len = fingerprint(current), len(current)
        return False

    def finish(self) -> None:
        """Close the file; the last line, even without its newline, is complete now."""
        if self.partial:
            self._line(self.partial, self.partial_start, self.partial_start + len(self.partial))
            self.partial_start += len(self.partial)
            self.partial = b""
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _split(self, data: bytes) -> None:
        buf = self.partial + data if self.partial else data
        base, start = self.partial_start, 0
        while (newline := buf.find(b"\n", start)) >= 0:
            while newline - start > self.max_line:
                size = _cut(buf, start, self.max_line)
                self._line(buf[start : start + size], base + start, base + start + size)
                start += size
            self._line(buf[start:newline], base + start, base + newline + 1)
            start = newline + 1
        while len(buf) - start >= self.max_line:  # an unbounded line must not hold memory
            size = _cut(buf, start, self.max_line)
            self._line(buf[start : start + size], base + start, base + start + size)
            start += size
        self.partial = buf[start:]
        self.partial_start = base + start

    def _line(self, raw: bytes, offset: int, end: int) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        text = raw.decode("utf-8", errors="replace") if raw else None
        self.ready.append(Line(self.entry, offset, end, text))
