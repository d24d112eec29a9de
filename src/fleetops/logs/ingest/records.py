"""The one shape every ingestion path produces, and the sink they all hand it to.

HTTP bodies, Loki pushes, syslog frames and agent batches differ only in framing; each is turned
into `LogRecord`s and passed to a `Sink` (the ingest pipeline), which stores them, mines their
templates and answers only once they are committed."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(slots=True)
class LogRecord:
    """One log line as received. `file`/`offset` are set by agents and make resends idempotent."""

    message: str
    host: str = ""
    ts: datetime | None = None  # event time, UTC; None when the sender gave none
    labels: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    offset: int | None = None  # byte offset of the line's start in `file`
    size: int = -1  # bytes as received; -1 means len(message.encode())
    invalid_utf8: bool = False  # bytes were replaced while decoding


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int  # stored now
    duplicates: int = 0  # already stored earlier (an agent's resend), skipped
    truncated: int = 0
    clock_skew: int = 0


class Overloaded(Exception):
    """The pipeline is full; the sender should retry after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"ingestion queue is full; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class Sink(Protocol):
    def submit(
        self, source: str, records: Sequence[LogRecord], *, wait: bool = False
    ) -> Awaitable[IngestResult]:
        """Store `records` from `source`; resolves after commit.

        With `wait=False` a full pipeline raises `Overloaded` (HTTP answers 429); with `wait=True`
        the caller is suspended until there is room (a TCP listener stops reading meanwhile)."""
        ...
