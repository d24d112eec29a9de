"""Background work of the devices domain inside `fleetops serve`: the health policy loop.

Each pass evaluates and applies the policy in its own transaction, in a thread (the database calls
block), so a slow pass never stalls the event loop and a failed pass changes nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from fleetops.db import session_scope
from fleetops.devices.policy import Applied, Decisions, Limits, Policy, apply, evaluate
from fleetops.models import utcnow

log = logging.getLogger(__name__)
INTERVAL = 30.0


class HealthPolicyTask:
    """Evaluate the health policy every `interval` seconds and apply what it decides."""

    def __init__(
        self,
        write_sessions: sessionmaker[Session],
        policy: Policy,
        *,
        limits: Limits | None = None,
        interval: float = INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = write_sessions
        self.policy = policy
        self.limits = limits or Limits()
        self.interval = interval
        self.clock = clock

    def run_once(self) -> tuple[Decisions, Applied]:
        """One pass, committed: what the policy decided and what it did."""
        with session_scope(self.sessions) as session:
            now = self.clock()
            decisions = evaluate(session, self.policy, now=now, limits=self.limits)
            applied = apply(session, decisions, now=now)
        if applied.moved or applied.storm is not None or decisions.deferred:
            log.info(
                "health policy: %d suspect, %d deferred, storm=%s, halted=%s",
                len(applied.moved),
                len(decisions.deferred),
                decisions.storm is not None,
                decisions.halted,
            )
        return decisions, applied

    async def run_forever(self) -> None:
        """Pass after pass until cancelled; a failed pass is logged and the next one tries again."""
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("health policy pass failed")
            await asyncio.sleep(self.interval)
