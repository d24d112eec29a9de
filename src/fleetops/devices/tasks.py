"""Background work of the devices domain inside `fleetops serve`: the health policy, the repair
loop, the remediation rules and the ticket webhooks.

Each pass runs in its own transaction, in a thread (the database calls block), so a slow pass
never stalls the event loop and a failed pass changes nothing. The repair loop (devices whose
change ended, SLA breaches) runs more often than the policy: it only follows what already happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from fleetops.db import lock, session_scope
from fleetops.devices.lifecycle.service import LifecycleConfig, Reconciled, reconcile
from fleetops.devices.policy.rules import Policy
from fleetops.devices.policy.safety import Caps
from fleetops.devices.policy.service import Applied, Decisions, Limits, apply, evaluate
from fleetops.devices.remediation import service as remedies
from fleetops.devices.remediation.rules import Remediation
from fleetops.devices.repairs import service as repairs
from fleetops.models import RemediationAction, utcnow

log = logging.getLogger(__name__)
INTERVAL = 30.0
RECONCILE_INTERVAL = 2.0


def _serialise(session: Session) -> None:
    """Passes of several servers on one PostgreSQL database take turns, so two of them cannot
    both admit the last isolation a cap allows (SQLite has a single writer already)."""
    lock(session, "health-policy")


class HealthPolicyTask:
    """Evaluate the health policy every `interval` seconds and apply what it decides; follow the
    devices' changes and tickets every `reconcile_interval` seconds."""

    def __init__(
        self,
        write_sessions: sessionmaker[Session],
        policy: Policy,
        *,
        limits: Limits | None = None,
        lifecycle: LifecycleConfig | None = None,
        interval: float = INTERVAL,
        reconcile_interval: float = RECONCILE_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = write_sessions
        self.policy = policy
        self.limits = limits or Limits()
        self.lifecycle = lifecycle
        self.interval = interval
        self.reconcile_interval = reconcile_interval
        self.clock = clock
        self.passes = 0  # policy passes attempted: what "a few passes later" counts in

    def run_once(self) -> tuple[Decisions, Applied]:
        """One policy pass, committed: what the policy decided and what it did."""
        with session_scope(self.sessions) as session:
            _serialise(session)
            now = self.clock()
            decisions = evaluate(session, self.policy, now=now, limits=self.limits)
            applied = apply(session, decisions, now=now, lifecycle=self.lifecycle)
        if applied.moved or applied.isolations or applied.storm is not None or decisions.deferred:
            log.info(
                "health policy: %d moved, %d isolating, %d held, %d deferred, storm=%s, halted=%s",
                len(applied.moved),
                len(applied.isolations),
                len(decisions.held),
                len(decisions.deferred),
                decisions.storm is not None,
                decisions.halted,
            )
        return decisions, applied

    def follow_once(self) -> Reconciled | None:
        """Move the devices whose change ended and check repair SLAs, committed."""
        if self.lifecycle is None:
            return None
        with session_scope(self.sessions) as session:
            _serialise(session)
            now = self.clock()
            done = reconcile(session, self.lifecycle, now=now)
            repairs.check_sla(session, now=now)
        if done.isolated or done.drain_failed or done.returned or done.verification_failed:
            log.info(
                "devices: isolated %s, drain failed %s, returned %s, verification failed %s",
                done.isolated,
                done.drain_failed,
                done.returned,
                done.verification_failed,
            )
        return done

    async def run_forever(self) -> None:
        """Passes until cancelled; a failed pass is logged and the next one tries again."""
        last_policy = float("-inf")
        while True:
            if time.monotonic() - last_policy >= self.interval:
                last_policy = time.monotonic()
                try:
                    await asyncio.to_thread(self.run_once)
                except Exception:
                    log.exception("health policy pass failed")
                self.passes += 1
            try:
                await asyncio.to_thread(self.follow_once)
            except Exception:
                log.exception("device reconcile pass failed")
            await asyncio.sleep(min(self.interval, self.reconcile_interval))


class RemediationTask:
    """Run the remediation rules every `interval` seconds and follow their actions' outcomes."""

    def __init__(
        self,
        write_sessions: sessionmaker[Session],
        remediation: Remediation,
        *,
        lifecycle: LifecycleConfig,
        caps: Caps | None = None,
        interval: float = INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = write_sessions
        self.remediation = remediation
        self.lifecycle = lifecycle
        self.caps = caps
        self.interval = interval
        self.clock = clock
        self.passes = 0

    def run_once(self) -> list[RemediationAction]:
        """One pass, committed: the actions recorded or taken."""
        with session_scope(self.sessions) as session:
            _serialise(session)  # drains share the device safety limits with the health policy
            now = self.clock()
            remedies.follow(session, self.remediation, now=now)
            written = remedies.run_pass(
                session, self.remediation, now=now, lifecycle=self.lifecycle, caps=self.caps
            )
        if written:
            log.info(
                "remediation: %s",
                ", ".join(f"{a.rule} {a.mode} {a.status} {a.entity}" for a in written),
            )
        return written

    async def run_forever(self) -> None:
        """Passes until cancelled; a failed pass is logged and the next one tries again."""
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("remediation pass failed")
            self.passes += 1
            await asyncio.sleep(self.interval)
