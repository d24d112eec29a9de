"""Device lifecycle states and the one way to move between them.

`transition()` runs the ordered named rules (each may refuse with a reason), then sets the state,
appends a history row and writes the audit record; `enrol()` gives a new host its first state.
Nothing else writes `DeviceState.state`, nor the inventory's copy in `Host.state`.
A regular move follows the graph in `ALLOWED`; an override (operators, with a reason) may jump to
any state, except that nothing leaves `retired`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.devices.enums import Lifecycle
from fleetops.errors import Conflict
from fleetops.findings.repository import existing_ids as finding_ids
from fleetops.kit import statemachine
from fleetops.models import DeviceState, DeviceTransition, Host, utcnow

POLICY_PREFIX = "policy:"


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
class Device:
    """What the rules need to know of the host being moved."""

    hostname: str
    evidence: tuple[int, ...]
    known_evidence: frozenset[int]  # those of `evidence` that exist as findings


Move = statemachine.Move[Device, Lifecycle]
Rule = statemachine.Rule[Device, Lifecycle]


def by_policy(move: Move) -> bool:
    return move.actor.startswith(POLICY_PREFIX)


class RetiredIsFinal(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current is L.RETIRED:
            return (
                f"{move.subject.hostname} is retired; nothing, not even an override, brings it back"
            )
        return None


class AlreadyThere(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.current is move.to:
            return f"{move.subject.hostname} is already {move.to}"
        return None


class ReasonRequired(Rule):
    def refuse(self, move: Move) -> str | None:
        if not move.reason:
            what = "an override" if move.override else "every transition"
            return f"{what} needs a reason (it is kept in the history and the audit log)"
        return None


class OverrideIsManual(Rule):
    def refuse(self, move: Move) -> str | None:
        if move.override and by_policy(move):
            return f"{move.actor} may not override; overrides are for operators"
        return None


class EvidenceExists(Rule):
    def refuse(self, move: Move) -> str | None:
        device = move.subject
        missing = [i for i in device.evidence if i not in device.known_evidence]
        if missing:
            return f"no finding with id {', '.join(map(str, missing))}"
        return None


MACHINE = statemachine.Machine(
    Lifecycle,
    ALLOWED,
    [
        RetiredIsFinal(),
        AlreadyThere(),
        ReasonRequired(),
        OverrideIsManual(),
        statemachine.AllowedStep(ALLOWED, lambda d: d.hostname, overridable=True),
        EvidenceExists(),
    ],
    TransitionRefused,
)


def next_states(current: Lifecycle) -> list[Lifecycle]:
    """The states a regular (non-override) transition may reach from `current`, in graph order."""
    return MACHINE.next_states(current)


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
    known = finding_ids(session, ids)
    device = Device(host.hostname, ids, frozenset(known))
    move = Move(device, current, to, ctx.actor, reason.strip(), override)
    MACHINE.check(move)
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


def enrol(
    session: Session,
    host: Host,
    state: Lifecycle,
    *,
    ctx: AuditContext,
    now: datetime | None = None,
) -> None:
    """Give a host just added to the inventory its first lifecycle state: what its source of
    record says (new hardware arrives `provisioning`; a fleet imported from NetBox brings its
    machines' states). Not a move, so no history row: the host's creation is its audit record."""
    row = DeviceState(
        host_id=host.id,
        state=state.value,
        since=now or utcnow(),
        reason="enrolled",
        updated_by=ctx.actor,
    )
    session.add(row)
    host.state = state.value
    session.flush()


def forget(session: Session, host: Host) -> None:
    """Drop the lifecycle state of a host being deleted (one that never moved: a host with
    transitions has history, and is retired instead)."""
    row = session.get(DeviceState, host.id)
    if row is not None:
        session.delete(row)
        session.flush()


def current(session: Session, host: Host) -> Lifecycle:
    """Where the host stands now (a host without a lifecycle row has been in service)."""
    state = session.scalar(select(DeviceState.state).where(DeviceState.host_id == host.id))
    return Lifecycle(state or host.state or INITIAL.value)


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
