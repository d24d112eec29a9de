"""Background work of the logs domain inside `fleetops serve`: the ingest pipeline's writer and
the retention of the raw-line window (and, as they are added, listeners and aggregation)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from fleetops.config import Settings
from fleetops.db import session_scope
from fleetops.logs import repository
from fleetops.logs.ingest.pipeline import IngestPipeline, Limits
from fleetops.models import utcnow

log = logging.getLogger(__name__)
RETENTION_EVERY = 60.0


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_line_bytes=settings.ingest_max_line_bytes,
        queue_lines=settings.ingest_queue_lines,
        batch_lines=settings.ingest_batch_lines,
        rate_lines=settings.ingest_rate_lines,
        future_skew=timedelta(seconds=settings.ingest_future_skew_seconds),
        past_skew=timedelta(seconds=settings.ingest_past_skew_seconds),
    )


class LogServices:
    """Starts and stops the logs domain's long-running parts, in order."""

    def __init__(self, settings: Settings, write_sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = write_sessions
        self.pipeline = IngestPipeline(write_sessions, limits=limits_from(settings))
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.pipeline.start()
        self._tasks.append(asyncio.create_task(self._retention(), name="logs-retention"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pipeline.stop()

    def prune_once(self) -> int:
        """Trim the raw-line window to its age and size limits; returns rows deleted."""
        before = utcnow() - timedelta(hours=self.settings.logs_retention_hours)
        total = 0
        while True:
            with session_scope(self.sessions) as session:
                deleted = repository.prune_lines(
                    session, before=before, max_bytes=self.settings.logs_retention_bytes
                )
            total += deleted
            if deleted == 0:
                return total

    async def _retention(self) -> None:
        while True:
            try:
                deleted = await asyncio.to_thread(self.prune_once)
                if deleted:
                    log.info("log retention: %d old lines deleted", deleted)
            except Exception:
                log.exception("log retention failed; retrying in %.0f s", RETENTION_EVERY)
            await asyncio.sleep(RETENTION_EVERY)
