"""Risk classification and the four-eyes approval policy, as small named rules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.auth.roles import Role
from fleetops.changes.enums import ChangeState
from fleetops.models import Approval, ChangeRequest

if TYPE_CHECKING:
    from fleetops.config import Settings


class Risk(StrEnum):
    READ_ONLY = "read_only"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)

    def raised(self, levels: int = 1) -> Risk:
        order = list(Risk)
        return order[min(self.rank + levels, len(order) - 1)]


def classify(operation_risks: list[Risk], *, hosts: int, fleet: int) -> Risk:
    """The highest operation risk, raised when the change touches much of the fleet.

    Touching more than 50 hosts or 10 % of the fleet raises it one level; more than half the
    fleet makes any mutating change high. Read-only work stays read-only.
    """
    risk = max(operation_risks, key=lambda r: r.rank, default=Risk.READ_ONLY)
    if risk == Risk.READ_ONLY:
        return risk
    if fleet and hosts * 2 > fleet:
        return Risk.HIGH
    if hosts > 50 or (fleet and hosts * 10 > fleet):
        return risk.raised()
    return risk


@dataclass(frozen=True)
class ApprovalPolicy:
    """How many distinct operators must approve each risk class (0: approved on submit)."""

    read_only: int = 0
    low: int = 0
    medium: int = 1
    high: int = 2

    def required(self, risk: Risk) -> int:
        return int(getattr(self, risk.value))

    @classmethod
    def of(cls, settings: Settings) -> ApprovalPolicy:
        """The policy a server's settings set (`approvals_medium`, `approvals_high`)."""
        return cls(medium=settings.approvals_medium, high=settings.approvals_high)


@dataclass(frozen=True)
class Vote:
    change: ChangeRequest
    approver: str
    role: Role
    emergency: bool
    comment: str


class ApprovalRule:
    """Refuses a vote with a reason, or lets it through (None)."""

    def refuse(self, session: Session, vote: Vote) -> str | None:
        raise NotImplementedError


class MustBePending(ApprovalRule):
    def refuse(self, session: Session, vote: Vote) -> str | None:
        if vote.change.state != ChangeState.PENDING_APPROVAL:
            return f"change {vote.change.id} is {vote.change.state}, not pending approval"
        return None


class RequesterCannotApprove(ApprovalRule):
    def refuse(self, session: Session, vote: Vote) -> str | None:
        if vote.approver == vote.change.requester:
            return "the requester of a change can never approve or reject it"
        return None


class ApproverMustBeOperator(ApprovalRule):
    def refuse(self, session: Session, vote: Vote) -> str | None:
        if not vote.role.includes(Role.OPERATOR):
            return f"approving needs the operator role; {vote.approver} is {vote.role}"
        return None


class EmergencyByAdminWithReason(ApprovalRule):
    def refuse(self, session: Session, vote: Vote) -> str | None:
        if not vote.emergency:
            return None
        if not vote.role.includes(Role.ADMIN):
            return "only an admin may approve in an emergency"
        if len(vote.comment.strip()) < 10:
            return "an emergency approval needs a reason (at least 10 characters)"
        return None


class OneVotePerApprover(ApprovalRule):
    def refuse(self, session: Session, vote: Vote) -> str | None:
        seen = session.scalar(
            select(Approval.id).where(
                Approval.change_id == vote.change.id, Approval.approver == vote.approver
            )
        )
        return f"{vote.approver} has already voted on this change" if seen else None


APPROVAL_RULES: list[ApprovalRule] = [
    MustBePending(),
    RequesterCannotApprove(),
    ApproverMustBeOperator(),
    EmergencyByAdminWithReason(),
    OneVotePerApprover(),
]


def refusal(session: Session, vote: Vote) -> str | None:
    """The first rule that refuses this vote, as 'RuleName: reason'."""
    for rule in APPROVAL_RULES:
        if why := rule.refuse(session, vote):
            return f"{type(rule).__name__}: {why}"
    return None


def approvals_count(session: Session, change: ChangeRequest) -> int:
    return len(
        session.scalars(
            select(Approval.approver).where(
                Approval.change_id == change.id, Approval.decision == "approve"
            )
        ).all()
    )
