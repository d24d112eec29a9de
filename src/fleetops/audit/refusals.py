"""Refused calls in the audit log, counted rather than copied.

A flood of bad tokens, forbidden calls or locked-out logins must not grow the chain by a row per
attempt, nor queue every request behind the chain's write lock. The first refusal of a kind (same
source, actor, action, group and outcome) in a minute is written at once, so an attempt shows in
the trail as it happens; the rest of that minute are counted and written as one row
(`after.repeats`) once the minute has passed. Memory is bounded: past `max_open` kinds in a
minute, further sources share one overflow kind per action and outcome. A crash loses at most a
minute's count of repeats; each kind's first refusal is already on disk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.db import session_scope
from fleetops.models import utcnow

log = logging.getLogger(__name__)
WINDOW = timedelta(minutes=1)
FLUSH_EVERY = 10.0  # seconds: each minute's counts are written this soon after it ends
MAX_OPEN = 4096
MAX_ENTITIES = 10  # distinct entities named in a repeats row
OVERFLOW = "*"

Kind = tuple[str, str, str, str, str, str]  # source, actor, action, entity_type, group, outcome


@dataclass
class _Window:
    start: datetime
    request_id: str
    repeats: int = 0
    last: datetime | None = None
    entities: list[str] = field(default_factory=list)


class RefusalLog:
    """Aggregates refusals per kind and minute into the audit chain (thread-safe)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = utcnow,
        max_open: int = MAX_OPEN,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._max_open = max_open
        self._open: dict[Kind, _Window] = {}
        self._closed: list[tuple[Kind, _Window]] = []  # replaced by a newer minute, not written
        self._lock = threading.Lock()

    def refuse(
        self,
        ctx: AuditContext,
        *,
        action: str,
        entity_type: str,
        entity_id: str,
        outcome: str,
        group: str | None = None,
        after: Any = None,
    ) -> None:
        """Record one refusal. `group` is the bounded part of what was refused (a route's
        template, not its path; nothing for a username): refusals that differ only outside it
        count as the same kind."""
        now = self._clock()
        start = now.replace(second=0, microsecond=0)
        kind: Kind = (ctx.source, ctx.actor, action, entity_type, group or "", outcome)
        with self._lock:
            window = self._open.get(kind)
            if window is None and len(self._open) >= self._max_open:
                kind = (OVERFLOW, OVERFLOW, action, entity_type, OVERFLOW, outcome)
                window = self._open.get(kind)
            if window is not None and window.start == start:
                window.repeats += 1
                window.last = now
                if entity_id not in window.entities and len(window.entities) < MAX_ENTITIES:
                    window.entities.append(entity_id)
                return
            if window is not None:
                self._closed.append((kind, window))
            # Opened before the row is written, so a concurrent refusal of this kind counts.
            self._open[kind] = _Window(start, ctx.request_id)
        self.flush()
        with session_scope(self._sessions) as session:
            audit.record(
                session,
                AuditContext(actor=kind[1], request_id=ctx.request_id, source=kind[0]),
                action=action,
                entity_type=entity_type,
                entity_id=entity_id[:256],
                outcome=outcome,
                after=after,
            )

    def flush(self, *, everything: bool = False) -> int:
        """Write the repeats of every minute that has passed (all of them at shutdown); how many
        rows were written."""
        cutoff = self._clock() - WINDOW
        with self._lock:
            due = [
                (kind, window)
                for kind, window in self._open.items()
                if everything or window.start <= cutoff
            ]
            for kind, _ in due:
                del self._open[kind]
            due += self._closed
            self._closed = []
        written = [(kind, w) for kind, w in due if w.repeats]
        if not written:
            return 0
        try:
            self._write(written)
        except Exception:
            with self._lock:  # kept for the next flush
                self._closed += written
            raise
        return len(written)

    async def run_forever(self, every: float = FLUSH_EVERY) -> None:
        """Write each minute's counts soon after it ends, until cancelled."""
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.flush)
            except Exception:  # the database may be away for a moment; the counts wait in memory
                log.exception("writing counted refusals failed; retrying")

    def _write(self, written: list[tuple[Kind, _Window]]) -> None:
        with session_scope(self._sessions) as session:
            for (source, actor, action, entity_type, group, outcome), window in written:
                audit.record(
                    session,
                    AuditContext(actor=actor, request_id=window.request_id, source=source),
                    action=action,
                    entity_type=entity_type,
                    entity_id=(window.entities[0] if window.entities else group)[:256],
                    outcome=outcome,
                    after={
                        "repeats": window.repeats,
                        "from": window.start,
                        "until": window.last,
                        "entities": window.entities,
                    },
                )

    def pending(self) -> int:
        """Refusals counted but not yet written."""
        with self._lock:
            windows = [*self._open.values(), *(w for _, w in self._closed)]
            return sum(w.repeats for w in windows)
