"""Finding states and the one way to move between them.

`transition()` runs the ordered named rules (each may refuse with a reason), sets the status and
the fields that go with it, and writes the audit record. Nothing else assigns `Finding.status`
(creation in the service sets the initial `open`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.errors import Conflict
from fleetops.findings.enums import FindingStatus
from fleetops.kit import statemachine
from fleetops.models import Finding

DETECTOR_PREFIX = "detector:"


class TransitionRefused(Conflict):
    """A rule refused the move; the message names the rule and says why."""


Move = statemachine.Move[Finding, FindingStatus]
Rule = statemachine.Rule[Finding, FindingStatus]


def by_hand(move: Move) -> bool:
    """People act as usernames (no colon); detectors as `detector:<name>`."""
    return not move.actor.startswith(DETECTOR_PREFIX)


class ResolvedIsFinal(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current is not FindingStatus.RESOLVED:
            return None
        f = move.subject
        when = f.resolved_at.isoformat() if f.resolved_at else "earlier"
        return (
            f"finding {f.id} was resolved by {f.resolved_by} at {when}; it cannot become "
            f"{move.to} (a recurrence opens a new finding)"
        )


class OpenIsInitial(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.to is FindingStatus.OPEN:
            return f"finding {move.subject.id} cannot go back to open; it is {move.current}"
        return None


class AlreadyThere(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current is move.to:
            who = move.subject.acknowledged_by if move.to is FindingStatus.ACKNOWLEDGED else ""
            by = f" by {who}" if who else ""
            return f"finding {move.subject.id} is already {move.to}{by}"
        return None


class ReasonRequiredToResolveByHand(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.to is FindingStatus.RESOLVED and by_hand(move) and not move.reason.strip():
            return (
                f"resolving finding {move.subject.id} by hand needs a reason "
                "(what was done, or why it is not a problem)"
            )
        return None


F = FindingStatus
# Acknowledging is optional; resolving is final (the rules say why a refused move is refused).
ALLOWED: dict[FindingStatus, frozenset[FindingStatus]] = {
    F.OPEN: frozenset({F.ACKNOWLEDGED, F.RESOLVED}),
    F.ACKNOWLEDGED: frozenset({F.RESOLVED}),
    F.RESOLVED: frozenset(),
}
MACHINE = statemachine.Machine(
    FindingStatus,
    ALLOWED,
    [ResolvedIsFinal(), OpenIsInitial(), AlreadyThere(), ReasonRequiredToResolveByHand()],
    TransitionRefused,
)


def transition(
    session: Session,
    finding: Finding,
    to: FindingStatus,
    *,
    ctx: AuditContext,
    reason: str = "",
    now: datetime,
) -> None:
    """Move a finding to `to`, or raise TransitionRefused naming the rule that refused."""
    current = FindingStatus(finding.status)
    move = Move(finding, current, to, ctx.actor, reason.strip())
    MACHINE.check(move)
    finding.status = to.value
    if to is FindingStatus.ACKNOWLEDGED:
        finding.acknowledged_by, finding.acknowledged_at = ctx.actor, now
    elif to is FindingStatus.RESOLVED:
        finding.resolved_by, finding.resolved_at = ctx.actor, now
        finding.resolution = move.reason
        finding.active_key = None  # frees the key: the next report of it opens a new finding
    session.flush()
    audit.record(
        session,
        ctx,
        action=f"finding.{to.value}",
        entity_type="finding",
        entity_id=finding.id,
        before={"status": current.value},
        after={"status": to.value, "reason": move.reason},
    )
