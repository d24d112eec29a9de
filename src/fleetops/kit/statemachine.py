"""One shape for every state machine: ordered, named rules decide whether a move may happen.

A domain declares its states (a StrEnum), the graph of regular moves, and its rules. `check()`
runs the rules in order and raises the domain's refusal naming the first rule that refused, why,
and the regular next states (`extra`: `rule`, `allowed`), so the API, the CLI and the pages can
all say what would have been possible. Applying a move (its fields, a history row) and its audit
record stay in the domain's `transition()`, the only writer of that state column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from fleetops.errors import AppError

S = TypeVar("S", bound=StrEnum)
T = TypeVar("T")


@dataclass(frozen=True)
class Move(Generic[T, S]):
    """A proposed move of `subject` (a row, or what the rules need of it) from `current` to `to`."""

    subject: T
    current: S
    to: S
    actor: str
    reason: str = ""
    override: bool = False  # an operator's jump outside the graph (where a machine allows it)


class Rule(Generic[T, S]):
    """A named check on a move: `refuse` returns why not, or None."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def refuse(self, move: Move[T, S]) -> str | None:
        raise NotImplementedError


class AllowedStep(Rule[T, S]):
    """The move follows the graph; an override may leave it where the machine allows overrides
    (`overridable`), and says so in its refusal."""

    def __init__(
        self,
        graph: Mapping[S, frozenset[S]],
        what: Callable[[T], str],
        *,
        overridable: bool = False,
    ) -> None:
        self.graph, self.what, self.overridable = graph, what, overridable

    def refuse(self, move: Move[T, S]) -> str | None:
        allowed = self.graph.get(move.current, frozenset())
        if (move.override and self.overridable) or move.to in allowed:
            return None
        hint = "; an operator override may jump" if self.overridable else ""
        return (
            f"{self.what(move.subject)} is {move.current}; it cannot become {move.to} "
            f"(next: {names(type(move.current), allowed)}{hint})"
        )


@dataclass(frozen=True)
class Machine(Generic[T, S]):
    """A domain's states, graph and rules, and the error its refusals raise."""

    states: type[S]
    graph: Mapping[S, frozenset[S]]
    rules: Sequence[Rule[T, S]]
    refused: type[AppError]

    def next_states(self, current: S) -> list[S]:
        """The states a regular move may reach from `current`, in declaration order."""
        allowed = self.graph.get(current, frozenset())
        return [s for s in self.states if s in allowed]

    def check(self, move: Move[T, S]) -> None:
        """Raise `refused` naming the first rule that refuses `move`."""
        for rule in self.rules:
            if why := rule.refuse(move):
                raise self.refused(
                    f"{rule.name}: {why}",
                    extra={
                        "rule": rule.name,
                        "allowed": [s.value for s in self.next_states(move.current)],
                    },
                )


def names(states: type[S], chosen: frozenset[S]) -> str:
    """`chosen` in declaration order, for messages ("none" when empty)."""
    return ", ".join(s.value for s in states if s in chosen) or "none"
