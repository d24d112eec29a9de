"""Device use cases: read lifecycle states (one host, or many by state and selector, with counts),
move a host by name, and read its history.

Every host is a device; a host without a lifecycle row is in service. Services only flush; the
caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.devices.enums import Lifecycle
from fleetops.devices.exceptions import DeviceNotFound
from fleetops.devices.states import next_states, transition
from fleetops.inventory import selectors
from fleetops.kit.pagination import paginate
from fleetops.models import DeviceState, DeviceTransition, Host


@dataclass(frozen=True)
class Device:
    """A host seen as a device: its lifecycle state and the last word on it."""

    hostname: str
    state: Lifecycle
    since: datetime
    reason: str
    updated_by: str
    change_id: int | None = None  # the change moving it now (draining, verifying)
    probation_until: datetime | None = None

    @property
    def next_states(self) -> list[Lifecycle]:
        return next_states(self.state)


Rows = Select[*tuple[Any, ...]]
# coalesce() takes its first argument's type, so `since` still comes back as aware UTC.
_STATE = func.coalesce(DeviceState.state, Host.state)
_SINCE = func.coalesce(DeviceState.since, Host.created_at)


def _devices() -> Rows:
    return select(
        Host.hostname,
        _STATE.label("state"),
        _SINCE.label("since"),
        func.coalesce(DeviceState.reason, "").label("reason"),
        func.coalesce(DeviceState.updated_by, "").label("updated_by"),
        DeviceState.change_id,
        DeviceState.probation_until,
    ).outerjoin(DeviceState, DeviceState.host_id == Host.id)


def _device(row: Any) -> Device:
    return Device(
        row.hostname,
        Lifecycle(row.state),
        row.since,
        row.reason,
        row.updated_by,
        row.change_id,
        row.probation_until,
    )


def _where(
    stmt: Rows, *, state: Lifecycle | None, selector: str | None, retired: bool = False
) -> Rows:
    """Filter by state and selector; retired devices only when asked for (`retired`, the
    `retired` state, or a selector naming them)."""
    retired = retired or state is Lifecycle.RETIRED
    if state is not None:
        stmt = stmt.where(_STATE == state.value)
    if selector is not None:
        stmt = stmt.where(selectors.to_clause(selectors.parse(selector), include_retired=retired))
    elif not retired:
        stmt = stmt.where(_STATE != Lifecycle.RETIRED.value)
    return stmt


def get(session: Session, *, hostname: str) -> Device | None:
    """One device by hostname, or None if no such host."""
    row = session.execute(_devices().where(Host.hostname == hostname)).one_or_none()
    return _device(row) if row is not None else None


def query(
    session: Session,
    *,
    state: Lifecycle | None = None,
    selector: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[Device], int]:
    """One page of devices in `state` among the hosts `selector` picks, and the total."""
    stmt = _where(_devices(), state=state, selector=selector).order_by(Host.hostname)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.execute(stmt.limit(limit).offset(offset)).all()
    return [_device(r) for r in rows], total


def counts(session: Session, *, selector: str | None = None) -> dict[str, int]:
    """How many of the selected hosts are in each state (every state listed, zeros included)."""
    stmt = _where(
        select(_STATE, func.count()).select_from(Host),
        state=None,
        selector=selector,
        retired=True,
    ).outerjoin(DeviceState, DeviceState.host_id == Host.id)
    found: dict[str, int] = dict(session.execute(stmt.group_by(_STATE)).all())
    return {s.value: int(found.get(s.value, 0)) for s in Lifecycle}


def move(
    session: Session,
    ctx: AuditContext,
    *,
    hostname: str,
    to: Lifecycle,
    reason: str,
    evidence: Sequence[int] = (),
    override: bool = False,
) -> DeviceTransition:
    """Move a host by name through the one transition function; DeviceNotFound if no such host."""
    return transition(
        session,
        host(session, hostname),
        to,
        ctx=ctx,
        reason=reason,
        evidence=evidence,
        override=override,
    )


def host(session: Session, hostname: str) -> Host:
    """The host of that name; DeviceNotFound if there is none."""
    found = session.scalar(select(Host).where(Host.hostname == hostname))
    if found is None:
        raise DeviceNotFound(f"host {hostname!r} not found")
    return found


def history(
    session: Session, *, hostname: str, limit: int, offset: int
) -> tuple[list[DeviceTransition], int]:
    """A host's transitions, newest first; DeviceNotFound if no such host."""
    host_id = session.scalar(select(Host.id).where(Host.hostname == hostname))
    if host_id is None:
        raise DeviceNotFound(f"host {hostname!r} not found")
    stmt = (
        select(DeviceTransition)
        .where(DeviceTransition.host_id == host_id)
        .order_by(DeviceTransition.at.desc(), DeviceTransition.id.desc())
    )
    return paginate(session, stmt, limit=limit, offset=offset)


# Crossing between these is what an operator sees on a curve: capacity leaving or coming back.
SERVING = (Lifecycle.IN_SERVICE, Lifecycle.SUSPECT)
OUT_OF_SERVICE = (Lifecycle.DRAINING, Lifecycle.ISOLATED, Lifecycle.IN_REPAIR, Lifecycle.VERIFYING)


def service_moves(
    session: Session, *, start: datetime, end: datetime, limit: int
) -> list[tuple[DeviceTransition, str]]:
    """Transitions in [start, end) that took a host out of service or brought it back, the
    latest `limit` of them, each with its hostname."""
    t = DeviceTransition
    serving, out = [s.value for s in SERVING], [s.value for s in OUT_OF_SERVICE]
    rows = session.execute(
        select(t, Host.hostname)
        .join(Host, Host.id == t.host_id)
        .where(
            t.at >= start,
            t.at < end,
            or_(
                and_(t.from_state.in_(serving), t.to_state.in_(out)),
                and_(t.from_state.in_(out), t.to_state.in_(serving)),
            ),
        )
        .order_by(t.at.desc(), t.id.desc())
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]
