"""Durable bookkeeping of host runs and step runs: one short committed transaction per transition.

Written before acting (a step is `running`) and after (its result), so that after a crash the
engine knows exactly which steps were done, which were in flight, and which never started.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.changes.executor import Result
from fleetops.changes.states import HostRunState, StepRunState
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


def interrupted_steps(session: Session) -> list[StepRun]:
    """Steps that were in flight when the previous process died."""
    return list(session.scalars(select(StepRun).where(StepRun.state == StepRunState.RUNNING)))
