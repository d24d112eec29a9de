"""Device lifecycle states and the one way to move between them.

`transition()` runs the ordered named rules (each may refuse with a reason), then sets the state,
appends a history row and writes the audit record. Nothing else writes `DeviceState.state`.
A regular move follows the graph in `ALLOWED`; an override (operators, with a reason) may jump to
any state, except that nothing leaves `retired`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.errors import Conflict
from fleetops.models import DeviceState, DeviceTransition, Finding, Host, utcnow

POLICY_PREFIX = "policy:"


class Lifecycle(StrEnum):
    IN_SERVICE = "in_service"
    SUSPECT = "suspect"  # a signal says something may be wrong; still serving
    DRAINING = "draining"  # work is being moved away
    ISOLATED = "isolated"  # out of service, awaiting repair
    IN_REPAIR = "in_repair"
    VERIFYING = "verifying"  # repaired or new: must pass verification to serve
    PROVISIONING = "provisioning"  # new hardware, not yet verified
    RETIRED = "retired"  # final


# A host without a lifecycle row has been in service since before devices were tracked.
INITIAL = Lifecycle.IN_SERVICE
L = Lifecycle
ALLOWED: dict[Lifecycle, frozenset[Lifecycle]] = {
    L.IN_SERVICE: frozenset({L.SUSPECT}),
    L.SUSPECT: frozenset({L.DRAINING, L.IN_SERVICE}),  # in_service: the suspicion cleared
    L.DRAINING: frozenset({L.ISOLATED, L.SUSPECT}),  # suspect: the drain failed or was aborted
    # Retired (final) from wherever the machine no longer carries work: decommissioned once drained,
    # not worth repairing, or dead on arrival. A serving host is drained first (or overridden).
    L.ISOLATED: frozenset({L.IN_REPAIR, L.RETIRED}),
    L.IN_REPAIR: frozenset({L.VERIFYING, L.RETIRED}),
    L.VERIFYING: frozenset({L.IN_SERVICE, L.IN_REPAIR}),  # in_repair: verification failed
    L.PROVISIONING: frozenset({L.VERIFYING, L.RETIRED}),
    L.RETIRED: frozenset(),
}


class TransitionRefused(Conflict):
    """A rule refused the move; `rule` names it and `allowed` lists the regular next states."""


@dataclass(frozen=True)
class Move:
    hostname: str
    current: Lifecycle
    to: Lifecycle
    actor: str
    reason: str
    evidence: tuple[int, ...]
    known_evidence: frozenset[int]  # those of `evidence` that exist as findings
    override: bool

    @property
    def by_policy(self) -> bool:
        return self.actor.startswith(POLICY_PREFIX)


class Rule:
    """A named check on a move; `refuse` returns why not, or None."""

    def refuse(self, move: Move) -> str | None:
        raise NotImplementedError


class RetiredIsFinal(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current is L.RETIRED:
            return f"{move.hostname} is retired; nothing, not even an override, brings it back"
        return None


class AlreadyThere(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current is move.to:
            return f"{move.hostname} is already {move.to}"
        return None


class ReasonRequired(Rule):
    def refuse(self, move: Move) -> str | None:
        if not move.reason:
            what = "an override" if move.override else "every transition"
            return f"{what} needs a reason (it is kept in the history and the audit log)"
        return None


class OverrideIsManual(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.override and move.by_policy:
            return f"{move.actor} may not override; overrides are for operators"
        return None


class AllowedStep(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.override or move.to in ALLOWED[move.current]:
            return None
        return (
            f"{move.hostname} is {move.current}; it cannot become {move.to} "
            f"(next: {_names(ALLOWED[move.current])}; an operator override may jump)"
        )


class EvidenceExists(Rule):
    def refuse(self, move: Move) -> str | None:
        missing = [i for i in move.evidence if i not in move.known_evidence]
        if missing:
            return f"no finding with id {', '.join(map(str, missing))}"
        return None


RULES: list[Rule] = [
    RetiredIsFinal(),
    AlreadyThere(),
    ReasonRequired(),
    OverrideIsManual(),
    AllowedStep(),
    EvidenceExists(),
]


def _names(states: Collection[Lifecycle]) -> str:
    return ", ".join(s.value for s in Lifecycle if s in states) or "none"


def next_states(current: Lifecycle) -> list[Lifecycle]:
    """The states a regular (non-override) transition may reach from `current`, in graph order."""
    return [s for s in Lifecycle if s in ALLOWED[current]]


def transition(
    session: Session,
    host: Host,
    to: Lifecycle,
    *,
    ctx: AuditContext,
    reason: str,
    evidence: Sequence[int] = (),
    override: bool = False,
    now: datetime | None = None,
) -> DeviceTransition:
    """Move a host to `to`, or raise TransitionRefused naming the rule that refused."""
    at = now or utcnow()
    row = _locked_row(session, host)
    current = Lifecycle(row.state)
    ids = tuple(dict.fromkeys(evidence))  # keep order, drop repeats
    known = set(session.scalars(select(Finding.id).where(Finding.id.in_(ids)))) if ids else set()
    move = Move(
        host.hostname, current, to, ctx.actor, reason.strip(), ids, frozenset(known), override
    )
    for rule in RULES:
        if why := rule.refuse(move):
            name = type(rule).__name__
            raise TransitionRefused(
                f"{name}: {why}",
                extra={"rule": name, "allowed": [s.value for s in next_states(current)]},
            )
    row.state, row.since, row.reason, row.updated_by = to.value, at, move.reason, ctx.actor
    host.state = to.value  # the inventory's copy, for selectors (`state=in_service`) and pages
    step = DeviceTransition(
        host_id=host.id,
        from_state=current.value,
        to_state=to.value,
        actor=ctx.actor,
        reason=move.reason,
        evidence=list(ids),
        override=override,
        at=at,
    )
    session.add(step)
    session.flush()
    audit.record(
        session,
        ctx,
        action="device.override" if override else f"device.{to.value}",
        entity_type="device",
        entity_id=host.hostname,
        before={"state": current.value},
        after={
            "state": to.value,
            "reason": move.reason,
            "evidence": list(ids),
            "override": override,
            "transition_id": step.id,
        },
    )
    return step


def _locked_row(session: Session, host: Host) -> DeviceState:
    """The host's lifecycle row, locked for this transaction; created (in service) if absent."""
    query = select(DeviceState).where(DeviceState.host_id == host.id).with_for_update()
    row = session.scalar(query)
    if row is not None:
        return row
    row = DeviceState(
        host_id=host.id,
        state=host.state or INITIAL.value,
        since=host.created_at,
        reason="",
        updated_by="",
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # a concurrent first transition created it: wait for theirs
        row = session.scalars(query.execution_options(populate_existing=True)).one()
    return row
