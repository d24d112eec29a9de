"""Finding states and the one way to move between them.

`transition()` runs the ordered named rules (each may refuse with a reason), sets the status and
the fields that go with it, and writes the audit record. Nothing else assigns `Finding.status`
(creation in the service sets the initial `open`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.errors import Conflict
from fleetops.models import Finding

DETECTOR_PREFIX = "detector:"


class FindingStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"  # someone looks at it; detectors still bump it
    RESOLVED = "resolved"  # final: a recurrence opens a new finding


LIVE = frozenset({FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED})


class TransitionRefused(Conflict):
    """A rule refused the move; the message names the rule and says why."""


@dataclass(frozen=True)
class Move:
    finding: Finding
    current: FindingStatus
    to: FindingStatus
    actor: str
    reason: str

    @property
    def by_hand(self) -> bool:
        """People act as usernames (no colon); detectors as `detector:<name>`."""
        return not self.actor.startswith(DETECTOR_PREFIX)


class Rule:
    """A named check on a move; `refuse` returns why not, or None."""

    def refuse(self, move: Move) -> str | None:
        raise NotImplementedError


class ResolvedIsFinal(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current is not FindingStatus.RESOLVED:
            return None
        f = move.finding
        when = f.resolved_at.isoformat() if f.resolved_at else "earlier"
        return (
            f"finding {f.id} was resolved by {f.resolved_by} at {when}; it cannot become "
            f"{move.to} (a recurrence opens a new finding)"
        )


class OpenIsInitial(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.to is FindingStatus.OPEN:
            return f"finding {move.finding.id} cannot go back to open; it is {move.current}"
        return None


class AlreadyThere(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current is move.to:
            who = move.finding.acknowledged_by if move.to is FindingStatus.ACKNOWLEDGED else ""
            by = f" by {who}" if who else ""
            return f"finding {move.finding.id} is already {move.to}{by}"
        return None


class ReasonRequiredToResolveByHand(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.to is FindingStatus.RESOLVED and move.by_hand and not move.reason.strip():
            return (
                f"resolving finding {move.finding.id} by hand needs a reason "
                "(what was done, or why it is not a problem)"
            )
        return None


RULES: list[Rule] = [
    ResolvedIsFinal(),
    OpenIsInitial(),
    AlreadyThere(),
    ReasonRequiredToResolveByHand(),
]


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
    for rule in RULES:
        if why := rule.refuse(move):
            raise TransitionRefused(f"{type(rule).__name__}: {why}")
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
