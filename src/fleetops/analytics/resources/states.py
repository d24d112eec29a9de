"""A recommendation's status, and the small named rules that decide whether it may move.

proposed -> accepted | rejected (an operator's decision, either way again while not applied);
accepted -> applied (only by applying the report: it is then part of a change). An applied
recommendation stays applied unless its change never ran or was undone (rejected, cancelled,
rolled back): then it may be decided again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleetops.changes.enums import ChangeState


class Status(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    APPLIED = "applied"


# A change in one of these left the scheduler as it was: its recommendations may be reconsidered.
UNDONE = frozenset({ChangeState.REJECTED, ChangeState.CANCELLED, ChangeState.ROLLED_BACK})


@dataclass(frozen=True, slots=True)
class Move:
    """A proposed status change: where from, where to, and the applying change's state."""

    current: Status
    to: Status
    change_state: str | None  # the state of the change that applied it, if any


class Rule:
    """Refuses a move with a reason, or lets it through (None)."""

    def refuse(self, move: Move) -> str | None:
        raise NotImplementedError


class AppliedStays(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current != Status.APPLIED:
            return None
        if move.change_state is not None and ChangeState(move.change_state) in UNDONE:
            return None
        return "it is applied (its change ran or is running); roll the change back first"


class OnlyApplyingApplies(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.to == Status.APPLIED and move.current != Status.ACCEPTED:
            return "only an accepted recommendation is applied"
        return None


class NothingToDecide(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.to == move.current:
            return f"it is {move.current.value} already"
        if move.to == Status.PROPOSED:
            return "a decision is changed, never withdrawn"
        return None


RULES: tuple[Rule, ...] = (NothingToDecide(), AppliedStays(), OnlyApplyingApplies())


def refusal(move: Move) -> str | None:
    """The first rule's reason to refuse the move, or None."""
    return next((reason for rule in RULES if (reason := rule.refuse(move))), None)
