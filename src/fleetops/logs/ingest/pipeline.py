"""The ingest pipeline: every path's records are de-duplicated, mined and committed here.

Senders get their answer only after the commit, so an acknowledged line is a stored line (an agent
that resends after a crash is de-duplicated by (source, file, offset)). Memory is bounded by
`queue_lines`: beyond it HTTP callers get `Overloaded` (429) and stream listeners are suspended.
Concurrent requests are committed together (group commit) by one writer, which also owns the
template miner, so template ids are assigned in one place and persisted with the lines."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fleetops.db import session_scope
from fleetops.logs import repository
from fleetops.logs.ingest.records import IngestResult, LogRecord, Overloaded
from fleetops.logs.parse.headers import split
from fleetops.logs.parse.miner import Template, TemplateMiner
from fleetops.models import LogLine, utcnow

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 64 * 1024
    queue_lines: int = 200_000
    queue_bytes: int = 256 * 1024 * 1024  # a few huge lines must not hold the memory of many
    batch_lines: int = 20_000
    rate_lines: float = 0.0  # per source per second; 0 = unlimited
    future_skew: timedelta = timedelta(minutes=5)
    past_skew: timedelta = timedelta(days=7)


@dataclass(slots=True)
class StoredLine:
    """A committed line as downstream consumers (aggregation, live tail) see it."""

    ts: datetime
    host: str
    source: str
    template_id: int
    content: str  # the message without its header
    level: str | None
    labels: dict[str, str]
    flags: int


@dataclass
class _Batch:
    source: str
    records: Sequence[LogRecord]
    done: asyncio.Future[IngestResult]
    size: int = 0  # bytes as received, counted against queue_bytes


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Stats:
    accepted: int = 0
    duplicates: int = 0
    rejected_overload: int = 0
    refused_hosts: int = 0  # lines naming a host outside their token's binding
    commits: int = 0
    failures: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


Subscriber = Callable[[Sequence[StoredLine]], None]


class IngestPipeline:
    """Bounded, group-committing sink for every ingestion path (see `records.Sink`)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        limits: Limits | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.factory = factory
        self.limits = limits or Limits()
        self.clock = clock
        self.stats = Stats()
        self.subscribers: list[Subscriber] = []
        self._miner = TemplateMiner()
        self._queue: list[_Batch] = []
        self._pending = 0
        self._pending_bytes = 0
        self._room = asyncio.Condition()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._token_seen: dict[str, datetime] = {}
        self._known_templates: set[int] = set()
        self._known_aliases: set[int] = set()  # merges already recorded in the database

    async def start(self) -> None:
        await asyncio.to_thread(self._restore)
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None

    @property
    def pending(self) -> int:
        return self._pending

    async def submit(
        self, source: str, records: Sequence[LogRecord], *, wait: bool = False
    ) -> IngestResult:
        if not records:
            return IngestResult(accepted=0)
        count = len(records)
        size = sum(r.size if r.size >= 0 else len(r.message.encode()) for r in records)
        self._take_rate(source, count)
        async with self._room:
            while self._pending > 0 and (
                self._pending + count > self.limits.queue_lines
                or self._pending_bytes + size > self.limits.queue_bytes
            ):
                if not wait:
                    self.stats.rejected_overload += count
                    raise Overloaded(retry_after=self._retry_after())
                await self._room.wait()
            self._pending += count
            self._pending_bytes += size
        batch = _Batch(source, records, asyncio.get_running_loop().create_future(), size)
        self._queue.append(batch)
        self._wake.set()
        # The line is stored even if the caller goes away: shield the writer's future.
        return await asyncio.shield(batch.done)

    def _take_rate(self, source: str, count: int) -> None:
        rate = self.limits.rate_lines
        if rate <= 0:
            return
        now = time.monotonic()
        bucket = self._buckets.setdefault(source, _Bucket(tokens=rate, at=now))
        bucket.tokens = min(rate, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < min(count, rate):
            self.stats.rejected_overload += count
            raise Overloaded(retry_after=max(1.0, (min(count, rate) - bucket.tokens) / rate))
        bucket.tokens -= count

    def _retry_after(self) -> float:
        return 1.0 if self._pending < 2 * self.limits.batch_lines else 2.0

    _stopping = False

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batches: list[_Batch] = []
                lines = 0
                while self._queue and (not batches or lines < self.limits.batch_lines):
                    batch = self._queue.pop(0)
                    batches.append(batch)
                    lines += len(batch.records)
                try:
                    results, stored = await asyncio.to_thread(self._store, batches)
                except Exception as exc:  # storage failed: nothing of these batches is kept
                    log.exception("ingest commit failed; %d lines answered with an error", lines)
                    self.stats.failures += 1
                    await asyncio.to_thread(self._restore)
                    for batch in batches:
                        if not batch.done.done():
                            batch.done.set_exception(exc)
                else:
                    for batch, result in zip(batches, results, strict=True):
                        if not batch.done.done():
                            batch.done.set_result(result)
                    for subscriber in self.subscribers:
                        try:
                            subscriber(stored)
                        except Exception:
                            log.exception("log subscriber failed")
                finally:
                    async with self._room:
                        self._pending -= lines
                        self._pending_bytes -= sum(b.size for b in batches)
                        self._room.notify_all()
            if self._stopping:
                return

    def _restore(self) -> None:
        """(Re)build the miner from the stored templates, so ids stay stable across restarts."""
        self._miner = TemplateMiner()
        with session_scope(self.factory) as session:
            rows = repository.load_templates(session)
            aliases = repository.load_aliases(session)
        for template_id, text, count in rows:
            self._miner.restore(template_id, text, count)
        self._miner.aliases.update(aliases)
        self._known_templates = {row[0] for row in rows} | set(aliases)
        self._known_aliases = set(aliases)

    def _store(self, batches: list[_Batch]) -> tuple[list[IngestResult], list[StoredLine]]:
        now = self.clock()
        keys = {
            (b.source, r.file)
            for b in batches
            for r in b.records
            if r.file is not None and r.offset is not None
        }
        with session_scope(self.factory) as session:
            known = repository.load_cursors(session, keys) if keys else {}
            cursors = dict(known)
            results, stored, rows, templates = self._prepare(batches, cursors, now)
            repository.insert_lines(session, rows)
            new = [
                {
                    "id": t.id,
                    "text": t.text,
                    "count": e.delta,
                    "first_seen": e.first,
                    "last_seen": e.seen,
                    "example": e.example,
                }
                for t, e in templates.values()
                if t.id not in self._known_templates
            ]
            touched = [
                {"tid": t.id, "text": t.text, "delta": e.delta, "seen": e.seen}
                for t, e in templates.values()
                if t.id in self._known_templates
            ]
            repository.save_templates(session, new, touched)
            merges = self._miner.aliases.keys() - self._known_aliases
            repository.alias_templates(session, {t: self._miner.aliases[t] for t in merges})
            changed = {k: v for k, v in cursors.items() if known.get(k) != v}
            repository.save_cursors(session, changed, known, now)
            due = {
                b.source
                for b in batches
                if now - self._token_seen.get(b.source, _EPOCH) > timedelta(minutes=1)
            }
            repository.touch_tokens(session, due, now)
            self._token_seen.update(dict.fromkeys(due, now))
        self._known_templates.update(templates)
        self._known_aliases.update(merges)
        self.stats.commits += 1
        for batch, result in zip(batches, results, strict=True):
            self.stats.accepted += result.accepted
            self.stats.duplicates += result.duplicates
            self.stats.by_source[batch.source] = (
                self.stats.by_source.get(batch.source, 0) + result.accepted
            )
        return results, stored

    def _prepare(
        self, batches: list[_Batch], cursors: dict[tuple[str, str], int], now: datetime
    ) -> tuple[list[IngestResult], list[StoredLine], list[dict[str, Any]], _Templates]:
        """De-duplicate, split headers, mine: the rows to insert and the lines to hand on."""
        out = _Prepared()
        for batch in batches:
            out.results.append(self._prepare_batch(batch, cursors, now, out))
        return out.results, out.stored, out.rows, out.templates

    def _prepare_batch(
        self, batch: _Batch, cursors: dict[tuple[str, str], int], now: datetime, out: _Prepared
    ) -> IngestResult:
        """One request's new lines: cut to size, stamped with a trusted time, mined, queued."""
        limits = self.limits
        max_bytes = limits.max_line_bytes
        future, past = now + limits.future_skew, now - limits.past_skew
        assign = self._miner.assign
        invalid_utf8, truncated_flag = LogLine.FLAG_INVALID_UTF8, LogLine.FLAG_TRUNCATED
        no_timestamp, clock_skew = LogLine.FLAG_NO_TIMESTAMP, LogLine.FLAG_CLOCK_SKEW
        rows, stored, templates = out.rows, out.stored, out.templates
        source = batch.source
        records, duplicates = _fresh(batch, cursors)
        accepted = truncated = skewed = 0
        for record in records:
            message = record.message
            size = record.size
            if size < 0:
                size = len(message.encode())
            flags = invalid_utf8 if record.invalid_utf8 else 0
            if size > max_bytes:
                message = message.encode()[:max_bytes].decode(errors="ignore")
                flags |= truncated_flag
                truncated += 1
            header_ts, level, content = split(message, now)
            ts = record.ts or header_ts
            labels = record.labels
            if ts is None:
                ts, flags = now, flags | no_timestamp
            elif ts > future or ts < past:
                labels = {**labels, "original_ts": ts.isoformat()}
                ts, flags = now, flags | clock_skew
                skewed += 1
            tid = _count_template(templates, assign(content), ts, content)
            host = record.host or source
            rows.append(
                {
                    "ts": ts,
                    "received_at": now,
                    "host": host,
                    "source": source,
                    "file": record.file,
                    "offset": record.offset,
                    "template_id": tid,
                    "message": message,
                    "labels": labels,
                    "flags": flags,
                    "size": size,
                }
            )
            stored.append(StoredLine(ts, host, source, tid, content, level, labels, flags))
            accepted += 1
        return IngestResult(accepted, duplicates, truncated, skewed)


def _fresh(batch: _Batch, cursors: dict[tuple[str, str], int]) -> tuple[list[LogRecord], int]:
    """The records not yet stored, and how many were: an agent resending after a crash repeats
    lines at or before its file's cursor. Advances the cursors past what is kept."""
    source = batch.source
    fresh: list[LogRecord] = []
    duplicates = 0
    for record in batch.records:
        file, offset = record.file, record.offset
        if file is not None and offset is not None:
            if offset <= cursors.get((source, file), -1):
                duplicates += 1
                continue
            cursors[(source, file)] = offset
        fresh.append(record)
    return fresh, duplicates


def _count_template(templates: _Templates, template: Template, ts: datetime, content: str) -> int:
    """Count a line against its template in this commit (how many, first and newest time, an
    example), for the template table; the template's id."""
    tid = template.id
    pair = templates.get(tid)
    if pair is None:
        templates[tid] = (template, _TemplateBatch(ts, ts, content[:2000]))
    else:
        entry = pair[1]
        entry.delta += 1
        if ts > entry.seen:
            entry.seen = ts
    return tid


_Templates = dict[int, tuple[Template, "_TemplateBatch"]]


@dataclass(slots=True)
class _TemplateBatch:
    """One template's lines in a commit: first and newest time, an example, how many."""

    first: datetime
    seen: datetime
    example: str
    delta: int = 1


@dataclass
class _Prepared:
    """One commit's batches made ready: an answer per batch, the rows, the lines to hand on."""

    results: list[IngestResult] = field(default_factory=list)
    stored: list[StoredLine] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    templates: _Templates = field(default_factory=dict)  # the commit's lines per template
