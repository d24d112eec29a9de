"""The one way to move a change request between its states (named in `changes.enums`).

`transition()` checks the move is allowed, runs the ordered named rules for it (each may refuse with
a reason), sets the state and writes the audit record. Nothing else assigns `ChangeRequest.state`.
Host and step runs are the engine's bookkeeping: their states (`HostRunState`, `StepRunState`) are
written by the engine's journal (and an ad-hoc run's recorder), never as bare strings.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.changes.enums import ChangeState
from fleetops.errors import Conflict
from fleetops.kit import statemachine
from fleetops.models import ChangeRequest, utcnow

S = ChangeState
ALLOWED: dict[ChangeState, frozenset[ChangeState]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL, S.APPROVED, S.CANCELLED}),
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SCHEDULED, S.RUNNING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.PAUSED, S.SUCCEEDED, S.FAILED, S.ABORTING, S.ABORTED, S.CANCELLED}),
    S.PAUSED: frozenset({S.RUNNING, S.ABORTING, S.ABORTED, S.CANCELLED}),
    S.ABORTING: frozenset({S.ROLLED_BACK, S.ABORTED, S.FAILED}),
    # A finished change may be re-opened to retry its failed hosts only.
    S.FAILED: frozenset({S.RUNNING}),
    S.ABORTED: frozenset({S.RUNNING}),
}


class TransitionRefused(Conflict):
    """The move is not allowed from this state, or a rule refused it."""


Move = statemachine.Move[ChangeRequest, ChangeState]
Rule = statemachine.Rule[ChangeRequest, ChangeState]


class EmergencyNeedsReason(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.to is S.APPROVED and move.subject.emergency and len(move.reason.strip()) < 10:
            return "an emergency approval needs a reason of at least 10 characters"
        return None


MACHINE = statemachine.Machine(
    ChangeState,
    ALLOWED,
    [statemachine.AllowedStep(ALLOWED, lambda c: f"change {c.id}"), EmergencyNeedsReason()],
    TransitionRefused,
)


def transition(
    session: Session, change: ChangeRequest, to: ChangeState, *, ctx: AuditContext, reason: str = ""
) -> None:
    """Move a change to `to`, or raise TransitionRefused with the rule's reason."""
    current = ChangeState(change.state)
    MACHINE.check(Move(change, current, to, ctx.actor, reason))
    change.state = to.value
    change.status_reason = reason[:500]
    now = utcnow()
    if to == S.RUNNING and change.started_at is None:
        change.started_at = now
    if to.terminal:
        change.finished_at = now
    session.flush()
    audit.record(
        session,
        ctx,
        action=f"change.{to.value}",
        entity_type="change",
        entity_id=change.id,
        before={"state": current.value},
        after={"state": to.value, "reason": reason},
    )
