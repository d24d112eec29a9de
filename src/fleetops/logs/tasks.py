"""Background work of the logs domain inside `fleetops serve`: the ingest pipeline's writer, the
syslog listener, stream aggregation with its detectors, and retention of the raw-line window
(`run_retention`, which the server runs on its leader alone).

Aggregation consumes committed lines (so nothing is counted that is not stored) and persists each
batch of final windows together with its resume point; after a restart it replays the stored lines
from that point, so rollups are neither lost nor double-counted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from fleetops.audit.refusals import RefusalLog
from fleetops.audit.service import AuditContext
from fleetops.config import Settings
from fleetops.db import session_scope
from fleetops.findings import service as findings
from fleetops.inventory import service as inventory
from fleetops.logs import repository
from fleetops.logs.aggregate.rules import load_rules
from fleetops.logs.aggregate.stream import LONG, Aggregator, Closed, Job
from fleetops.logs.detect.detectors import Candidate, DetectorConfig, detect_all
from fleetops.logs.ingest.pipeline import IngestPipeline, Limits, StoredLine
from fleetops.logs.ingest.syslog import SenderBinding, SyslogServer
from fleetops.logs.parse.headers import split_header
from fleetops.models import utcnow

log = logging.getLogger(__name__)
RETENTION_EVERY = 60.0
ROLLUP_RETENTION = timedelta(days=7)
DETECTORS = ("straggler", "link-tomography", "error-signatures", "template-burst")
QUIET_BEFORE_RESOLVE = timedelta(minutes=5)
BINDING_REFRESH_S = 30.0
IDLE_CLOSE = 15.0  # seconds without lines before the open windows are closed anyway


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_line_bytes=settings.ingest_max_line_bytes,
        queue_lines=settings.ingest_queue_lines,
        queue_bytes=settings.ingest_queue_bytes,
        batch_lines=settings.ingest_batch_lines,
        rate_lines=settings.ingest_rate_lines,
        future_skew=timedelta(seconds=settings.ingest_future_skew_seconds),
        past_skew=timedelta(seconds=settings.ingest_past_skew_seconds),
    )


class LogServices:
    """Starts and stops the logs domain's long-running parts, in order.

    Windows close by event time. With `realtime` (the default, from `logs_realtime`), a stream
    that has gone quiet for `IDLE_CLOSE` of wall time also gets its last windows closed, so a quiet
    fleet's charts do not stall; the wall clock never moves the watermark otherwise, so a shipper
    catching up on a backlog is aggregated in full. Evaluation on simulated time turns it off."""

    def __init__(
        self,
        settings: Settings,
        write_sessions: sessionmaker[Session],
        *,
        realtime: bool | None = None,
        detector_config: DetectorConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        refusals: RefusalLog | None = None,
    ) -> None:
        self.settings = settings
        self.refusals = refusals
        self.sessions = write_sessions
        self.realtime = settings.logs_realtime if realtime is None else realtime
        self._last_lines = time.monotonic()
        self.detector_config = detector_config or DetectorConfig()
        self.pipeline = IngestPipeline(write_sessions, limits=limits_from(settings), clock=clock)
        self.aggregator: Aggregator | None = None
        self.syslog: SyslogServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed: asyncio.Queue[Closed] = asyncio.Queue()
        self._flushing = False

    async def start(self) -> None:
        await self.pipeline.start()
        rules = load_rules(*filter(None, [self.settings.log_rules_file]))
        resume = await asyncio.to_thread(self._resume_point)
        self.aggregator = Aggregator(rules, self._topology, watermark=None)
        if resume is not None:
            self.aggregator.restore_jobs(await asyncio.to_thread(self._jobs_to_restore, resume))
            await asyncio.to_thread(self._replay, resume)
        self.pipeline.subscribers.append(self._on_lines)
        self._tasks += [
            asyncio.create_task(self._flusher(), name="logs-rollups"),
            asyncio.create_task(self._ticker(), name="logs-windows"),
        ]
        if self.settings.syslog_port is not None:
            binding = SenderBinding(self.settings.syslog_relays.split(","))
            binding.update(await asyncio.to_thread(self._addresses))
            self.syslog = SyslogServer(
                self.pipeline,
                host=self.settings.syslog_host,
                tcp_port=self.settings.syslog_port,
                udp_port=self.settings.syslog_port,
                allow=[c for c in self.settings.syslog_allow.split(",") if c.strip()],
                binding=binding,
                on_foreign=self._refused_sender,
            )
            await self.syslog.start()
            self._tasks.append(
                asyncio.create_task(self._refresh_binding(binding), name="syslog-binding")
            )

    def _addresses(self) -> list[tuple[str, str]]:
        with self.sessions() as session:
            return inventory.addresses(session)

    async def _refresh_binding(self, binding: SenderBinding) -> None:
        """Keep the senders' addresses as the inventory has them (a new host is heard within
        BINDING_REFRESH_S)."""
        while True:
            await asyncio.sleep(BINDING_REFRESH_S)
            try:
                binding.update(await asyncio.to_thread(self._addresses))
            except Exception:  # the database may be away for a moment: keep the last map
                log.exception("syslog: reloading host addresses failed")

    def _refused_sender(self, peer: str, host: str) -> None:
        if self.refusals is not None:
            self.refusals.refuse(
                AuditContext(actor="syslog", source=peer),
                action="logs.syslog",
                entity_type="host",
                entity_id=host,
                outcome="foreign_host",
            )

    async def stop(self) -> None:
        if self.syslog is not None:
            await self.syslog.stop()
        await self.pipeline.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Close every open window (as if time moved on) and wait until all are saved."""
        agg = self.aggregator
        if agg is not None and agg.max_ts is not None:
            self._advance(agg.max_ts + timedelta(minutes=2))
        while not self._closed.empty() or self._flushing:
            await asyncio.sleep(0.05)

    # --- aggregation ------------------------------------------------------------------------------

    def _resume_point(self) -> datetime | None:
        with session_scope(self.sessions) as session:
            return repository.resume_point(session)

    def _topology(self) -> inventory.Topology:
        with session_scope(self.sessions) as session:
            return inventory.topology(session)

    def _jobs_to_restore(self, resume: datetime) -> list[Job]:
        with session_scope(self.sessions) as session:
            rows = repository.jobs_to_restore(session, resume, utcnow() - timedelta(days=1))
            return [Job(j.app_id, j.host, j.state, j.started_at, j.finished_at) for j in rows]

    def _replay(self, since: datetime) -> None:
        """Feed the aggregator the stored lines it had not finalised before the restart."""
        assert self.aggregator is not None
        self.aggregator.watermark = since
        after = 0
        while True:
            with session_scope(self.sessions) as session:
                rows = repository.lines_since(session, since, after_id=after, limit=20_000)
                lines = []
                for row in rows:
                    header = split_header(row.message)
                    lines.append(
                        StoredLine(
                            row.ts,
                            row.host,
                            row.source,
                            row.template_id or 0,
                            header.message,
                            header.level,
                            row.labels,
                            row.flags,
                        )
                    )
            if not rows:
                return
            after = rows[-1].id
            self.aggregator.add(lines)

    def _on_lines(self, lines: Sequence[StoredLine]) -> None:
        assert self.aggregator is not None
        self._last_lines = time.monotonic()
        self.aggregator.add(lines)
        self._advance(None)

    def _advance(self, now: datetime | None) -> None:
        assert self.aggregator is not None
        closed = self.aggregator.advance(now)
        if closed is not None:
            self._closed.put_nowait(closed)

    async def _ticker(self) -> None:
        seconds = 0
        while True:
            await asyncio.sleep(1.0)
            agg = self.aggregator
            quiet = time.monotonic() - self._last_lines
            if self.realtime and agg is not None and agg.max_ts is not None and quiet > IDLE_CLOSE:
                self._advance(agg.max_ts + timedelta(seconds=LONG) + agg.lateness)
                self._last_lines = time.monotonic()
            seconds += 1
            if seconds % 60 == 0 and agg is not None:
                agg.topology = await asyncio.to_thread(self._topology)

    async def _flusher(self) -> None:
        while True:
            closed = await self._closed.get()
            assert self.aggregator is not None
            candidates: list[tuple[datetime, list[Candidate]]] = [
                (end, detect_all(self.aggregator, end, self.detector_config))
                for end in closed.windows_closed[-3:]
            ]
            self._flushing = True
            try:
                await asyncio.to_thread(self._flush, closed, closed.resume_from, candidates)
            except Exception:
                log.exception("saving rollups and findings failed; they are recomputed on restart")
            finally:
                self._flushing = False

    def _flush(
        self, closed: Closed, resume: datetime, candidates: list[tuple[datetime, list[Candidate]]]
    ) -> None:
        with session_scope(self.sessions) as session:
            repository.save_rollups(session, closed, resume)
        for now, found in candidates:
            with session_scope(self.sessions) as session:
                for c in found:
                    findings.report(session, c.observation(), now=now)
                active = {c.dedup_key for c in found}
                for detector in DETECTORS:
                    findings.auto_resolve(
                        session,
                        detector=detector,
                        still_active_keys=active,
                        now=now,
                        quiet_for=QUIET_BEFORE_RESOLVE,
                    )

    # --- retention --------------------------------------------------------------------------------

    def prune_once(self) -> int:
        """Trim the raw-line window to its age and size limits, and old rollups; rows deleted."""
        now = utcnow()
        before = now - timedelta(hours=self.settings.logs_retention_hours)
        total = 0
        with session_scope(self.sessions) as session:
            total += repository.prune_rollups(session, before=now - ROLLUP_RETENTION)
        while True:
            with session_scope(self.sessions) as session:
                deleted = repository.prune_lines(
                    session, before=before, max_bytes=self.settings.logs_retention_bytes
                )
            total += deleted
            if deleted == 0:
                return total

    async def run_retention(self) -> None:
        """Prune every RETENTION_EVERY seconds until cancelled (on the leader: the raw-line window
        is the database's, not this server's)."""
        while True:
            try:
                deleted = await asyncio.to_thread(self.prune_once)
                if deleted:
                    log.info("log retention: %d old rows deleted", deleted)
            except Exception:
                log.exception("log retention failed; retrying in %.0f s", RETENTION_EVERY)
            await asyncio.sleep(RETENTION_EVERY)
