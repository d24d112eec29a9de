"""What the agent tells its operator on stderr: one timestamped line per event, with repeated
warnings (an unreachable server, an unreadable file) limited to one line per interval."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO


class Log:
    """Timestamped lines to a stream; a `key` makes a message rate-limited per key."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def info(self, message: str, *, key: str | None = None) -> None:
        self._emit("info", message, key)

    def warn(self, message: str, *, key: str | None = None) -> None:
        self._emit("warning", message, key)

    def _emit(self, level: str, message: str, key: str | None) -> None:
        if key is not None:
            now = self.clock()
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            if skipped := self._suppressed.pop(key, 0):
                message += f" ({skipped} similar messages suppressed)"
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.stream.write(f"{stamp} fleetops-agent {level}: {message}\n")
        self.stream.flush()


@dataclass
class Totals:
    """Counters since start, for the periodic progress line and the final summary."""

    lines: int = 0  # sent (blank lines are not sent)
    accepted: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0

    def summary(self) -> str:
        return (
            f"{self.lines} lines sent in {self.requests} requests: {self.accepted} stored, "
            f"{self.duplicates} already stored; {self.retries} retries"
        )
