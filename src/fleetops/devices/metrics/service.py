"""Repair metrics: how fast devices are repaired, where repairs concentrate, how often a repair does
not hold, the ticket load, and how much capacity is out of service, now and over time.

Everything is read from the database as it stands at `now` (an argument, so tests and replays pick
the moment): tickets give the repair figures, and the transition history gives the capacity series,
each bucket counting the devices out of service (draining, isolated, in repair, verifying) at its
end. Cores are counted where the host's hardware model knows them; the fleet excludes retired hosts.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.devices.enums import Lifecycle, TicketStatus
from fleetops.devices.policy.safety import OUT_OF_SERVICE
from fleetops.devices.repairs.service import LIVE, RUNGS
from fleetops.inventory import selectors
from fleetops.models import DeviceState, DeviceTransition, HardwareModel, Host, Rack, RepairTicket

WINDOW = timedelta(days=30)
REPEAT_WITHIN = timedelta(days=30)
MAX_HOURS = 24 * 30
# Bucket sizes in minutes, smallest first: the series uses the first giving at most MAX_POINTS.
STEPS = (5, 10, 15, 30, 60, 120, 360, 720, 1440)
MAX_POINTS = 120
_OUT = frozenset(s.value for s in OUT_OF_SERVICE)
_LIVE = [s.value for s in LIVE]


# --- shapes ---------------------------------------------------------------------------------------


class Mttr(BaseModel):
    """Time from a ticket's opening to its close as verified, over the verified tickets."""

    tickets: int = Field(description="verified tickets closed in the window")
    mean_hours: float | None = Field(description="None when no ticket was verified")
    median_hours: float | None


class RungMttr(Mttr):
    action: str = Field(description="the rung: reboot, reimage or replace")


class RepairGroup(BaseModel):
    """Repairs of one hardware model or rack (None: hosts without one)."""

    name: str | None
    tickets: int = Field(description="tickets opened in the window")
    devices: int = Field(description="distinct devices among them")
    hosts: int = Field(description="hosts of this model or rack now (for a rate)")


class RepeatFailures(BaseModel):
    """Devices whose repair did not hold: a new ticket within `within_days` of a verified one."""

    within_days: int
    verified_devices: int = Field(description="devices with a ticket verified in the window")
    repeat_devices: int = Field(description="those with a later ticket opened within the delay")
    rate: float | None = Field(description="repeat / verified; None when nothing was verified")


class TicketLoad(BaseModel):
    open: int = Field(description="tickets still being worked on (open to repaired)")
    overdue: int = Field(description="open tickets past their SLA")


class Capacity(BaseModel):
    """Out-of-service devices (and their cores, where known) among a set of hosts, now."""

    devices: int
    fleet: int = Field(description="hosts not retired")
    cores: int = Field(description="cores of the out-of-service devices whose model knows them")
    fleet_cores: int = Field(description="cores of the fleet, where known (0: none known)")
    fraction: float | None = Field(description="devices / fleet; None for an empty fleet")
    by_state: dict[str, int] = Field(description="out-of-service devices per state")


class CapacityPoint(BaseModel):
    start: datetime
    end: datetime = Field(description="the moment counted: the bucket's end, or now for the last")
    devices: int
    cores: int


class CapacitySeries(BaseModel):
    hours: int
    step_minutes: int
    fleet: int
    fleet_cores: int
    points: list[CapacityPoint]


class RepairMetrics(BaseModel):
    at: datetime
    window_days: float
    mttr: Mttr
    mttr_by_rung: list[RungMttr]
    by_model: list[RepairGroup]
    by_rack: list[RepairGroup]
    repeat: RepeatFailures
    tickets: TicketLoad
    capacity: Capacity
    series: CapacitySeries


# --- repair figures -------------------------------------------------------------------------------


def _hours(durations: Sequence[timedelta]) -> tuple[float | None, float | None]:
    values = [d.total_seconds() / 3600 for d in durations]
    if not values:
        return None, None
    return round(statistics.fmean(values), 3), round(statistics.median(values), 3)


def mttr(
    session: Session, *, now: datetime, window: timedelta = WINDOW
) -> tuple[Mttr, list[RungMttr]]:
    """Mean and median time to repair of the tickets verified in the window, overall and per rung.

    A ticket's time runs from its opening to its close as verified; failed rungs are not repairs
    (the next rung's ticket carries on)."""
    rows = session.execute(
        select(RepairTicket.action, RepairTicket.opened_at, RepairTicket.closed_at).where(
            RepairTicket.status == TicketStatus.VERIFIED.value,
            RepairTicket.closed_at > now - window,
            RepairTicket.closed_at <= now,
        )
    ).all()
    per_rung: dict[str, list[timedelta]] = defaultdict(list)
    for action, opened, closed in rows:
        if closed is not None:
            per_rung[action].append(closed - opened)
    everything = [d for durations in per_rung.values() for d in durations]
    overall = Mttr(tickets=len(everything), **_named(_hours(everything)))
    order = [*RUNGS, *sorted(set(per_rung) - set(RUNGS))]
    rungs = [
        RungMttr(action=a, tickets=len(per_rung[a]), **_named(_hours(per_rung[a]))) for a in order
    ]
    return overall, rungs


def _named(pair: tuple[float | None, float | None]) -> dict[str, float | None]:
    return {"mean_hours": pair[0], "median_hours": pair[1]}


def _groups(
    rows: Iterable[tuple[str | None, int]], sizes: dict[str | None, int]
) -> list[RepairGroup]:
    tickets: dict[str | None, int] = defaultdict(int)
    devices: dict[str | None, set[int]] = defaultdict(set)
    for name, host_id in rows:
        tickets[name] += 1
        devices[name].add(host_id)
    found = [
        RepairGroup(name=n, tickets=t, devices=len(devices[n]), hosts=sizes.get(n, 0))
        for n, t in tickets.items()
    ]
    return sorted(found, key=lambda g: (-g.tickets, g.name is None, g.name or ""))


def _repairs_by(
    session: Session, name: Any, on: Any, *, now: datetime, window: timedelta
) -> list[RepairGroup]:
    """Tickets opened in the window grouped by `name` (a column of the table joined `on`)."""
    table = name.class_
    rows = session.execute(
        select(name, RepairTicket.host_id)
        .join(Host, Host.id == RepairTicket.host_id)
        .outerjoin(table, on)
        .where(RepairTicket.opened_at > now - window, RepairTicket.opened_at <= now)
    ).all()
    sizes = session.execute(
        select(name, func.count(Host.id)).select_from(Host).outerjoin(table, on).group_by(name)
    ).all()
    return _groups(((n, h) for n, h in rows), {n: int(c) for n, c in sizes})


def repairs_by_model(
    session: Session, *, now: datetime, window: timedelta = WINDOW
) -> list[RepairGroup]:
    """Tickets opened in the window per hardware model, most repaired first."""
    on = HardwareModel.id == Host.model_id
    return _repairs_by(session, HardwareModel.name, on, now=now, window=window)


def repairs_by_rack(
    session: Session, *, now: datetime, window: timedelta = WINDOW
) -> list[RepairGroup]:
    """Tickets opened in the window per rack, most repaired first."""
    return _repairs_by(session, Rack.name, Rack.id == Host.rack_id, now=now, window=window)


def repeat_failures(
    session: Session,
    *,
    now: datetime,
    window: timedelta = WINDOW,
    within: timedelta = REPEAT_WITHIN,
) -> RepeatFailures:
    """Among devices with a ticket verified in the window, those with a ticket opened (at or before
    `now`) within `within` after one of these verifications: the repair did not hold."""
    verified = session.execute(
        select(RepairTicket.host_id, RepairTicket.closed_at).where(
            RepairTicket.status == TicketStatus.VERIFIED.value,
            RepairTicket.closed_at > now - window,
            RepairTicket.closed_at <= now,
        )
    ).all()
    hosts = {h for h, _ in verified}
    opened: dict[int, list[datetime]] = defaultdict(list)
    if hosts:
        for host_id, at in session.execute(
            select(RepairTicket.host_id, RepairTicket.opened_at).where(
                RepairTicket.host_id.in_(hosts), RepairTicket.opened_at <= now
            )
        ):
            opened[host_id].append(at)
    repeats = {
        host_id
        for host_id, closed in verified
        if closed is not None and any(closed < at <= closed + within for at in opened[host_id])
    }
    return RepeatFailures(
        within_days=round(within.total_seconds() / 86400),
        verified_devices=len(hosts),
        repeat_devices=len(repeats),
        rate=round(len(repeats) / len(hosts), 4) if hosts else None,
    )


def ticket_load(session: Session, *, now: datetime) -> TicketLoad:
    """Tickets being worked on, and those of them past their SLA."""
    live = select(func.count()).select_from(RepairTicket).where(RepairTicket.status.in_(_LIVE))
    overdue = live.where(RepairTicket.sla_due < now)
    return TicketLoad(open=session.scalar(live) or 0, overdue=session.scalar(overdue) or 0)


# --- capacity -------------------------------------------------------------------------------------


def capacity(session: Session, *, selector: str | None = None) -> Capacity:
    """Devices out of service now (their current state) among the hosts `selector` picks."""
    state = func.coalesce(DeviceState.state, Host.state)
    stmt = (
        select(state, func.count(Host.id), func.coalesce(func.sum(HardwareModel.cpu_cores), 0))
        .select_from(Host)
        .outerjoin(DeviceState, DeviceState.host_id == Host.id)
        .outerjoin(HardwareModel, HardwareModel.id == Host.model_id)
        .group_by(state)
    )
    if selector is not None:
        stmt = stmt.where(selectors.to_clause(selectors.parse(selector)))
    rows = [(s, int(n), int(c)) for s, n, c in session.execute(stmt).all()]
    serving = [(s, n, c) for s, n, c in rows if s != Lifecycle.RETIRED.value]
    out = [(s, n, c) for s, n, c in rows if s in _OUT]
    devices, fleet = sum(n for _, n, _ in out), sum(n for _, n, _ in serving)
    return Capacity(
        devices=devices,
        fleet=fleet,
        fraction=round(devices / fleet, 4) if fleet else None,
        cores=sum(c for _, _, c in out),
        fleet_cores=sum(c for _, _, c in serving),
        by_state={
            s.value: next((n for st, n, _ in out if st == s.value), 0) for s in OUT_OF_SERVICE
        },
    )


def step_minutes(hours: int) -> int:
    """The bucket size for a series over `hours`: the finest giving at most MAX_POINTS buckets."""
    return next((s for s in STEPS if hours * 60 / s <= MAX_POINTS), STEPS[-1])


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // step) * step


def _bucket_starts(now: datetime, hours: int, step: timedelta) -> list[datetime]:
    """Aligned buckets covering [now - hours, now]; the last one holds `now` (or ends at it)."""
    first = _floor(now - timedelta(hours=hours), step)
    last = _floor(now, step)
    if last == now:
        last -= step
    count = (last - first) // step + 1
    return [first + i * step for i in range(count)]


def _states_at(session: Session, moment: datetime) -> dict[int, str]:
    """Each host's state at `moment` by its last transition at or before it (moved hosts only)."""
    ranked = (
        select(
            DeviceTransition.host_id,
            DeviceTransition.to_state,
            func.row_number()
            .over(
                partition_by=DeviceTransition.host_id,
                order_by=(DeviceTransition.at.desc(), DeviceTransition.id.desc()),
            )
            .label("rank"),
        )
        .where(DeviceTransition.at <= moment)
        .subquery()
    )
    rows = session.execute(select(ranked.c.host_id, ranked.c.to_state).where(ranked.c.rank == 1))
    return {int(host_id): str(state) for host_id, state in rows}


def capacity_series(session: Session, *, now: datetime, hours: int = 24) -> CapacitySeries:
    """Out-of-service devices and cores at the end of each bucket of the last `hours`, rebuilt
    from the transition history (a host never moved has always been in service)."""
    hours = max(1, min(hours, MAX_HOURS))
    step = timedelta(minutes=step_minutes(hours))
    starts = _bucket_starts(now, hours, step)
    state = _states_at(session, starts[0])
    moves = session.execute(
        select(
            DeviceTransition.host_id,
            DeviceTransition.from_state,
            DeviceTransition.to_state,
            DeviceTransition.at,
        )
        .where(DeviceTransition.at > starts[0], DeviceTransition.at <= now)
        .order_by(DeviceTransition.at, DeviceTransition.id)
    ).all()
    for host_id, before, _, _ in moves:
        state.setdefault(
            host_id, before
        )  # first moved inside the range: it was `before` until then
    cores = dict(
        session.execute(
            select(Host.id, HardwareModel.cpu_cores).join(
                HardwareModel, HardwareModel.id == Host.model_id
            )
        ).all()
    )
    out = {h for h, s in state.items() if s in _OUT}
    points: list[CapacityPoint] = []
    index = 0
    for start in starts:
        end = min(start + step, now)
        while index < len(moves) and moves[index].at <= end:
            host_id, _, to, _ = moves[index]
            (out.add if to in _OUT else out.discard)(host_id)
            index += 1
        points.append(
            CapacityPoint(
                start=start,
                end=end,
                devices=len(out),
                cores=sum(cores.get(h, 0) for h in out),
            )
        )
    now_capacity = capacity(session)
    return CapacitySeries(
        hours=hours,
        step_minutes=int(step.total_seconds() // 60),
        fleet=now_capacity.fleet,
        fleet_cores=now_capacity.fleet_cores,
        points=points,
    )


# --- everything -----------------------------------------------------------------------------------


def repair_metrics(
    session: Session, *, now: datetime, hours: int = 24, window: timedelta = WINDOW
) -> RepairMetrics:
    """Every repair metric at `now`: repair figures over `window`, capacity over `hours`."""
    overall, rungs = mttr(session, now=now, window=window)
    return RepairMetrics(
        at=now,
        window_days=round(window.total_seconds() / 86400, 3),
        mttr=overall,
        mttr_by_rung=rungs,
        by_model=repairs_by_model(session, now=now, window=window),
        by_rack=repairs_by_rack(session, now=now, window=window),
        repeat=repeat_failures(session, now=now, window=window),
        tickets=ticket_load(session, now=now),
        capacity=capacity(session),
        series=capacity_series(session, now=now, hours=hours),
    )
