"""The Prometheus poller: each configured query, stored as a metric like a push.

A source backfills once when the poller starts (a range query from the end of what is already
stored, at most `backfill` back, so a restart does not count samples twice), then runs an
instant query every `interval`. A Prometheus that is down, or a query it refuses, does not stop
anything: the first failure is logged, repeats of it are not, and the query is retried with a
growing delay until it answers (logged too). The server runs this on the leader only: two
servers polling would store every sample twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from fleetops.config import PrometheusSource
from fleetops.db import session_scope
from fleetops.errors import AppError
from fleetops.metrics import service
from fleetops.metrics.exceptions import PrometheusError
from fleetops.metrics.schemas import MetricPoint, PrometheusReader, QueriedSeries

log = logging.getLogger(__name__)
MAX_BACKOFF = 300.0  # seconds: a Prometheus back after a long outage is seen within 5 minutes
RANGE_POINTS = 10_000  # per series; Prometheus refuses more than 11,000


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Health:
    """A source's failures, so that an outage is logged once, not at every retry."""

    failures: int = 0
    last_error: str = ""
    skipped: set[str] = field(default_factory=set)  # series logged as not storable


class PrometheusPoller:
    """Runs `sources` against the readers `reader_for(url)` gives (one per Prometheus)."""

    name = "prometheus-poller"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        sources: Sequence[PrometheusSource],
        reader_for: Callable[[str], PrometheusReader],
        *,
        backfill: timedelta,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sessions = sessions
        self.sources = list(sources)
        self.readers = {url: reader_for(url) for url in {s.url for s in sources}}
        self.backfill = backfill
        self.clock = clock
        self.sleep = sleep
        self.health = {source.name: _Health() for source in sources}
        self.stored = dict.fromkeys(self.health, 0)  # samples stored per source, for tests
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.run_source(s), name=f"prometheus:{s.name}")
            for s in self.sources
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for reader in self.readers.values():
            await reader.aclose()

    async def run_source(self, source: PrometheusSource) -> None:
        """Backfill, then poll for ever; failures only delay the next try."""
        backfilled = False
        while True:
            try:
                if backfilled:
                    await self.poll(source)
                else:
                    await self.backfill_source(source)
                    backfilled = True
                self._recovered(source)
                delay = source.interval
            except (PrometheusError, AppError) as exc:
                delay = self._failed(source, exc)
            except Exception as exc:  # the database, say: keep polling, but show where
                if not self.health[source.name].failures:
                    log.exception("prometheus source %s: storing failed", source.name)
                delay = self._failed(source, exc)
            await self.sleep(delay)

    async def backfill_source(self, source: PrometheusSource) -> None:
        """Store the source's recent past: a range query from where stored windows end."""
        now = self.clock()
        since = now - self.backfill
        latest = await asyncio.to_thread(self._latest, source.name)
        if latest is not None:
            since = max(since, latest + timedelta(seconds=service.WINDOW_SECONDS))
        if since >= now:
            return
        step = max(source.interval, (now - since).total_seconds() / RANGE_POINTS)
        reader = self.readers[source.url]
        found = await reader.query_range(source.query, start=since, end=now, step=step)
        await self._store(source, found, now)

    async def poll(self, source: PrometheusSource) -> None:
        """Store the query's value now."""
        found = await self.readers[source.url].query(source.query)
        await self._store(source, found, self.clock())

    async def _store(
        self, source: PrometheusSource, found: list[QueriedSeries], now: datetime
    ) -> None:
        points = [p for series in found for p in self._points(source, series)]
        if not points:
            return

        def write() -> int:
            with session_scope(self.sessions) as session:
                return service.record(session, points, now=now)

        await asyncio.to_thread(write)
        self.stored[source.name] += len(points)

    def _points(self, source: PrometheusSource, series: QueriedSeries) -> list[MetricPoint]:
        labels = {k: v for k, v in series.labels.items() if k != "__name__"}
        try:
            return [
                MetricPoint(name=source.name, value=v, time=t, kind=source.kind, labels=labels)
                for t, v in series.samples
            ]
        except ValueError as exc:  # pydantic's ValidationError: labels or a value out of bounds
            key = service.series_key(labels)
            if key not in self.health[source.name].skipped:
                self.health[source.name].skipped.add(key)
                log.warning(
                    "prometheus source %s: series {%s} not stored: %s", source.name, key, exc
                )
            return []

    def _latest(self, name: str) -> datetime | None:
        with self.sessions() as session:
            return service.latest_start(session, name)

    def _failed(self, source: PrometheusSource, exc: Exception) -> float:
        health = self.health[source.name]
        health.failures += 1
        if str(exc) != health.last_error:
            health.last_error = str(exc)
            log.warning(
                "prometheus source %s: %s (retrying with backoff; logged again when the error "
                "changes or the query answers)",
                source.name,
                exc,
            )
        return float(min(source.interval * 2 ** min(health.failures, 16), MAX_BACKOFF))

    def _recovered(self, source: PrometheusSource) -> None:
        health = self.health[source.name]
        if health.failures:
            log.warning(
                "prometheus source %s: answering again after %d failed tries",
                source.name,
                health.failures,
            )
        health.failures, health.last_error = 0, ""
