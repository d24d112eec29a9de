"""Durable bookkeeping of host runs and step runs: one short committed transaction per transition.

Written before acting (a step is `running`) and after (its result), so that after a crash the
engine knows exactly which steps were done, which were in flight, and which never started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.changes.enums import HostRunState, StepRunState
from fleetops.changes.executor import Result
from fleetops.db import session_scope
from fleetops.models import HostRun, StepRun, utcnow


class Journal:
    def __init__(
        self, sessions: sessionmaker[Session], read_sessions: sessionmaker[Session] | None = None
    ) -> None:
        self.sessions = sessions
        self.read_sessions = read_sessions or sessions  # reads must not take the write lock

    def start_step(
        self, host_run_id: int, step_index: int, operation: str, phase: str, attempt: int
    ) -> int:
        with session_scope(self.sessions) as s:
            row = StepRun(
                host_run_id=host_run_id,
                step_index=step_index,
                operation=operation,
                phase=phase,
                attempt=attempt,
                state=StepRunState.RUNNING,
                exit_code=None,
            )
            s.add(row)
            s.flush()
            return row.id

    def finish_step(self, step_run_id: int, result: Result, *, refused: str = "") -> None:
        """Record a step's result; a step the server `refused` to run is audited with it."""
        with session_scope(self.sessions) as s:
            row = s.get(StepRun, step_run_id)
            assert row is not None
            if refused:
                host_run = s.get(HostRun, row.host_run_id)
                assert host_run is not None
                audit.record(
                    s,
                    AuditContext(actor="engine"),
                    action="change.step",
                    entity_type="change",
                    entity_id=host_run.change_id,
                    outcome="refused",
                    after={
                        "host": host_run.hostname,
                        "operation": row.operation,
                        "phase": row.phase,
                        "why": refused[:500],
                    },
                )
            if row.phase == "check" and not result.error:
                # A check answers a question; "no" is not a failure.
                row.state = StepRunState.SATISFIED if result.ok else StepRunState.UNSATISFIED
            else:
                row.state = StepRunState.SUCCEEDED if result.ok else StepRunState.FAILED
            row.exit_code = result.exit_code
            row.stdout, row.stderr = result.stdout, result.stderr
            row.error = (result.error + (" (output truncated)" if result.truncated else ""))[:2000]
            row.finished_at = utcnow()

    def host(self, host_run_id: int, **fields: Any) -> None:
        with session_scope(self.sessions) as s:
            s.execute(update(HostRun).where(HostRun.id == host_run_id).values(**fields))

    def host_state(self, host_run_id: int) -> tuple[HostRunState, int]:
        with self.read_sessions() as s:
            row = s.execute(
                select(HostRun.state, HostRun.step_index).where(HostRun.id == host_run_id)
            ).one()
            return HostRunState(row[0]), int(row[1])

    def now(self) -> datetime:
        return utcnow()


# The writers below take the caller's session: they run inside the engine's (or a retry's)
# transaction, next to the change's own transition.


def settle_interrupted(session: Session, rerunnable: Callable[[str], bool]) -> None:
    """After a crash: steps that were in flight are marked interrupted, and their hosts go back
    to pending so the check-first loop re-resolves them, except a host whose interrupted step
    may not run twice (`rerunnable(operation)` is false): it fails, for a person to look at."""
    for step in session.scalars(select(StepRun).where(StepRun.state == StepRunState.RUNNING)):
        step.state = StepRunState.INTERRUPTED
        step.error = "the engine stopped while this ran"
        step.finished_at = utcnow()
        host_run = session.get(HostRun, step.host_run_id)
        if host_run is None or step.phase != "run" or rerunnable(step.operation):
            continue
        host_run.state = HostRunState.FAILED
        host_run.error = (
            f"{step.operation} was interrupted; it has no check and is not "
            "idempotent, so it is not re-run: inspect the host, then retry"
        )
    session.execute(
        update(HostRun)
        .where(HostRun.state == HostRunState.RUNNING)
        .values(state=HostRunState.PENDING)
    )


def cancel(runs: Iterable[HostRun]) -> None:
    """Hosts the change will no longer touch (an abort before they started)."""
    for run in runs:
        run.state = HostRunState.CANCELLED


def requeue_failed(session: Session, change_id: int) -> None:
    """A retry: the change's failed hosts run again from the step that failed."""
    session.execute(
        update(HostRun)
        .where(HostRun.change_id == change_id, HostRun.state == HostRunState.FAILED)
        .values(state=HostRunState.PENDING, error="")
    )
