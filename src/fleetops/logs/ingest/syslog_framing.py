"""TCP framing for syslog (RFC 6587): octet-counted or delimited frames out of a byte stream.

Kept apart from the listener because it is a pure state machine with its own bound on memory:
a broken or hostile sender cannot make it buffer more than one frame of `max_frame` bytes.
"""

from __future__ import annotations

import re

_START, _COUNTED, _LINE, _SKIP_COUNTED, _SKIP_LINE = range(5)
_MAX_LEN_DIGITS = 10
_DIGITS = frozenset(b"0123456789")
_DELIMITER = re.compile(b"[\n\x00]")
_CR = 0x0D


class SyslogFramer:
    """Split a TCP byte stream into syslog frames (RFC 6587), holding at most `max_frame` bytes.

    Each frame is either octet-counted (`LEN SP MSG`, chosen when it starts with a non-zero
    digit run and a space) or ends at LF, CRLF or NUL. A frame longer than `max_frame` is cut
    there and the rest skipped up to the next boundary, so a broken or hostile sender cannot make
    the listener buffer without bound; `oversize` counts such frames. Empty lines are dropped.
    """

    def __init__(self, max_frame: int = 65536) -> None:
        if max_frame < 16:
            raise ValueError("max_frame must be at least 16 bytes")
        self.max_frame = max_frame
        self.oversize = 0
        self._buf = bytearray()
        self._mode = _START
        self._remaining = 0  # bytes left in the current octet-counted frame
        self._cr = False  # a line of exactly max_frame bytes then CR: is LF next?

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (never more than `max_frame`)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The frames completed by `chunk`, in order."""
        out: list[bytes] = []
        pos, end = 0, len(chunk)
        steps = {
            _START: self._start,
            _COUNTED: self._counted,
            _LINE: self._line,
            _SKIP_COUNTED: self._skip_counted,
            _SKIP_LINE: self._skip_line,
        }
        while pos < end:
            pos = steps[self._mode](chunk, pos, out)
        return out

    def flush(self) -> list[bytes]:
        """End of stream: the incomplete frame, if any (a sender may omit the last LF)."""
        frame = bytes(self._buf)
        if self._mode == _LINE and not self._cr:
            frame = frame.removesuffix(b"\r")
        keep = self._mode in (_START, _COUNTED, _LINE)
        self._buf.clear()
        self._mode, self._remaining, self._cr = _START, 0, False
        return [frame] if keep and frame else []

    def _start(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        end = len(chunk)
        if not self._buf:
            while pos < end and chunk[pos] in (0x0A, 0x00):  # stray trailers between frames
                pos += 1
        i = pos
        while i < end and chunk[i] in _DIGITS and len(self._buf) + i - pos < _MAX_LEN_DIGITS:
            i += 1
        self._buf += chunk[pos:i]
        if i == end:
            return end  # the length may continue in the next chunk
        if self._buf and self._buf[0] != 0x30 and chunk[i] == 0x20:
            self._mode, self._remaining = _COUNTED, int(self._buf)
            self._buf.clear()
            return i + 1
        self._mode = _LINE  # digits so far (if any) are the start of a line
        return i

    def _counted(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        take = min(self._remaining, len(chunk) - pos)
        keep = min(take, self.max_frame - len(self._buf))
        self._buf += chunk[pos : pos + keep]
        self._remaining -= take
        if self._remaining == 0 and keep == take:
            self._emit(out, _START)
        elif len(self._buf) == self.max_frame:
            self.oversize += 1
            self._emit(out, _SKIP_COUNTED if self._remaining else _START)
        return pos + take

    def _skip_counted(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        take = min(self._remaining, len(chunk) - pos)
        self._remaining -= take
        if self._remaining == 0:
            self._mode = _START
        return pos + take

    def _line(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        if self._cr:  # max_frame bytes then CR were held: only a trailer now keeps it in bounds
            self._cr = False
            if chunk[pos] in (0x0A, 0x00):
                self._emit(out, _START)
                return pos + 1
            self.oversize += 1
            self._emit(out, _SKIP_LINE)
            return pos
        found = _DELIMITER.search(chunk, pos)
        if found is not None:
            stop = found.start()
            total = len(self._buf) + stop - pos
            self._buf += chunk[pos : min(stop, pos + self.max_frame + 1 - len(self._buf))]
            if len(self._buf) == total and self._buf.endswith(b"\r"):
                del self._buf[-1]
                total -= 1
            if total > self.max_frame:
                self.oversize += 1
                del self._buf[self.max_frame :]
            self._emit(out, _START)
            return stop + 1
        end = len(chunk)
        total = len(self._buf) + end - pos
        if total <= self.max_frame:
            self._buf += chunk[pos:]
            return end
        if total == self.max_frame + 1 and chunk[end - 1] == _CR:
            self._buf += chunk[pos : end - 1]
            self._cr = True
            return end
        room = self.max_frame - len(self._buf)
        self._buf += chunk[pos : pos + room]
        self.oversize += 1
        self._emit(out, _SKIP_LINE)
        return pos + room

    def _skip_line(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        found = _DELIMITER.search(chunk, pos)
        if found is None:
            return len(chunk)
        self._mode = _START
        return found.end()

    def _emit(self, out: list[bytes], mode: int) -> None:
        if self._buf:
            out.append(bytes(self._buf))
            self._buf.clear()
        self._mode = mode
