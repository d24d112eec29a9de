"""Change request states and the one way to move between them.

`transition()` checks the move is allowed, runs the ordered named rules for it (each may refuse with
a reason), sets the state and writes the audit record. Nothing else assigns `ChangeRequest.state`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.errors import Conflict
from fleetops.models import ChangeRequest, utcnow


class ChangeState(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTING = "aborting"  # rolling back the hosts already done
    ABORTED = "aborted"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        ChangeState.REJECTED,
        ChangeState.SUCCEEDED,
        ChangeState.FAILED,
        ChangeState.ABORTED,
        ChangeState.ROLLED_BACK,
        ChangeState.CANCELLED,
    }
)
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


@dataclass(frozen=True)
class Move:
    change: ChangeRequest
    to: ChangeState
    actor: str
    reason: str


class Rule:
    """A named check on a move; `refuse` returns why not, or None."""

    applies_to: frozenset[ChangeState] = frozenset()

    def refuse(self, move: Move) -> str | None:
        raise NotImplementedError


class EmergencyNeedsReason(Rule):
    applies_to = frozenset({S.APPROVED})

    def refuse(self, move: Move) -> str | None:
        if move.change.emergency and len(move.reason.strip()) < 10:
            return "an emergency approval needs a reason of at least 10 characters"
        return None


RULES: list[Rule] = [EmergencyNeedsReason()]


def transition(
    session: Session, change: ChangeRequest, to: ChangeState, *, ctx: AuditContext, reason: str = ""
) -> None:
    """Move a change to `to`, or raise TransitionRefused with the rule's reason."""
    current = ChangeState(change.state)
    if to not in ALLOWED.get(current, frozenset()):
        raise TransitionRefused(f"change {change.id} is {current}; it cannot become {to}")
    move = Move(change, to, ctx.actor, reason)
    for rule in RULES:
        if to in rule.applies_to and (why := rule.refuse(move)):
            raise TransitionRefused(f"{type(rule).__name__}: {why}")
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
