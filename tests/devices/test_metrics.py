"""Repair metrics on a real database, from histories built through the services at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.devices.enums import Lifecycle, TicketStatus
from fleetops.devices.metrics import service as metrics
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import RepairConfig, TicketUpdate
from fleetops.devices.states import transition
from fleetops.models import Datacenter, HardwareModel, Host, Rack, Region
from tests.fixtures.app import Tokens

T = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CTX = AuditContext(actor="test")
CONFIG = RepairConfig()  # reboot 8 h, reimage 24 h, replace 120 h
L = Lifecycle


def at(hours: float = 0, days: float = 0, minutes: float = 0) -> datetime:
    return T + timedelta(days=days, hours=hours, minutes=minutes)


def fleet(session: Session) -> dict[str, Host]:
    """h1, h2 (r01, 64 cores); h3 (r02, cores unknown); h4 (r02, no model); h5 (no rack, 64
    cores); h6 (no rack, cores unknown), retired."""
    dc = Datacenter(name="dc1", region=Region(name="eu"))
    r01, r02 = Rack(name="r01", datacenter=dc), Rack(name="r02", datacenter=dc)
    big, small = HardwareModel(name="big", cpu_cores=64), HardwareModel(name="small")
    placed = {
        "h1": (r01, big),
        "h2": (r01, big),
        "h3": (r02, small),
        "h4": (r02, None),
        "h5": (None, big),
        "h6": (None, small),
    }
    hosts = {
        name: Host(hostname=name, rack=rack, model=model, created_at=at(days=-60))
        for name, (rack, model) in placed.items()
    }
    session.add_all(hosts.values())
    session.flush()
    return hosts


def walk(
    session: Session, host: Host, *steps: tuple[Lifecycle, datetime], override: bool = False
) -> None:
    for to, when in steps:
        transition(session, host, to, ctx=CTX, reason=f"to {to}", override=override, now=when)


def verified(session: Session, host: Host, opened: datetime, took: timedelta) -> None:
    ticket = repairs.open_ticket(
        session, CTX, host, symptoms="disk", evidence=[], config=CONFIG, now=opened
    )
    repairs.close(session, CTX, ticket, TicketStatus.VERIFIED, reason="ok", now=opened + took)


@pytest.fixture
def hosts(session: Session) -> dict[str, Host]:
    hosts = fleet(session)
    h1, h2, h3, h4 = (hosts[n] for n in ("h1", "h2", "h3", "h4"))
    # Tickets. h1: verified reboot, then a repeat 5 days later whose reboot fails and whose
    # reimage is verified. h2: one verified reboot. h3: a reboot verified 40 days ago (outside
    # the window) and one open for 20 days (overdue). h4: one opened an hour ago.
    verified(session, h1, at(days=-10), timedelta(hours=4))
    again = repairs.open_ticket(
        session, CTX, h1, symptoms="disk", evidence=[], config=CONFIG, now=at(days=-5)
    )
    repairs.close(session, CTX, again, TicketStatus.FAILED, reason="no", now=at(days=-5, hours=2))
    reimage = repairs.climb(session, CTX, h1, again, config=CONFIG, now=at(days=-5, hours=2))
    assert reimage is not None
    repairs.close(
        session, CTX, reimage, TicketStatus.VERIFIED, reason="ok", now=at(days=-5, hours=12)
    )
    verified(session, h2, at(days=-3), timedelta(hours=6))
    verified(session, h3, at(days=-40), timedelta(hours=8))
    stuck = repairs.open_ticket(
        session, CTX, h3, symptoms="psu", evidence=[], config=CONFIG, now=at(days=-20)
    )
    repairs.update(
        session, CTX, stuck, TicketUpdate(status=TicketStatus.DIAGNOSING), now=at(days=-19)
    )
    repairs.open_ticket(session, CTX, h4, symptoms="nic", evidence=[], config=CONFIG, now=at(-1))
    # Transitions. h1 out from 09:30 to 11:45; h2 out from 10:20; h3 isolated (override) at
    # 11:00; h5 only suspect; h6 retired before the range.
    walk(
        session,
        h1,
        (L.SUSPECT, at(-3)),
        (L.DRAINING, at(-2.5)),
        (L.ISOLATED, at(-1.5)),
        (L.IN_REPAIR, at(-1)),
        (L.VERIFYING, at(-0.5)),
        (L.IN_SERVICE, at(minutes=-15)),
    )
    walk(session, h2, (L.SUSPECT, at(minutes=-110)), (L.DRAINING, at(minutes=-100)))
    walk(session, h3, (L.ISOLATED, at(-1)), override=True)
    walk(session, hosts["h5"], (L.SUSPECT, at(minutes=-70)))
    walk(session, hosts["h6"], (L.RETIRED, at(-3)), override=True)
    session.commit()
    return hosts


def test_mttr_overall_and_per_rung(session: Session, hosts: dict[str, Host]) -> None:
    overall, rungs = metrics.mttr(session, now=T)
    # 4 h (h1 reboot), 10 h (h1 reimage), 6 h (h2 reboot); h3's is outside the 30 days.
    assert overall == metrics.Mttr(tickets=3, mean_hours=6.667, median_hours=6.0)
    assert rungs == [
        metrics.RungMttr(action="reboot", tickets=2, mean_hours=5.0, median_hours=5.0),
        metrics.RungMttr(action="reimage", tickets=1, mean_hours=10.0, median_hours=10.0),
        metrics.RungMttr(action="replace", tickets=0, mean_hours=None, median_hours=None),
    ]
    longer, _ = metrics.mttr(session, now=T, window=timedelta(days=41))
    assert (longer.tickets, longer.mean_hours, longer.median_hours) == (4, 7.0, 7.0)
    before, _ = metrics.mttr(session, now=at(days=-30))  # nothing was verified yet that month
    assert before == metrics.Mttr(tickets=1, mean_hours=8.0, median_hours=8.0)


def test_repairs_per_model_and_rack(session: Session, hosts: dict[str, Host]) -> None:
    by_model = metrics.repairs_by_model(session, now=T)
    assert by_model == [
        metrics.RepairGroup(name="big", tickets=4, devices=2, hosts=3),
        metrics.RepairGroup(name="small", tickets=1, devices=1, hosts=2),
        metrics.RepairGroup(name=None, tickets=1, devices=1, hosts=1),
    ]
    by_rack = metrics.repairs_by_rack(session, now=T)
    assert by_rack == [
        metrics.RepairGroup(name="r01", tickets=4, devices=2, hosts=2),
        metrics.RepairGroup(name="r02", tickets=2, devices=2, hosts=2),
    ]


def test_repeat_failures_and_ticket_load(session: Session, hosts: dict[str, Host]) -> None:
    # h1 and h2 were verified in the window; h1 came back 5 days after its first repair.
    assert metrics.repeat_failures(session, now=T) == metrics.RepeatFailures(
        within_days=30, verified_devices=2, repeat_devices=1, rate=0.5
    )
    # Seen 6 days ago, h1's repeat had not happened: 1 device verified, none back yet.
    assert metrics.repeat_failures(session, now=at(days=-6)) == metrics.RepeatFailures(
        within_days=30, verified_devices=1, repeat_devices=0, rate=0.0
    )
    # A new ticket 4 days after a verification, with a 3-day delay, is not a repeat.
    assert metrics.repeat_failures(session, now=T, within=timedelta(days=3)).repeat_devices == 0
    assert metrics.repeat_failures(session, now=at(days=-50)).rate is None
    # h3's ticket is 20 days old (SLA 8 h), h4's is an hour old.
    assert metrics.ticket_load(session, now=T) == metrics.TicketLoad(open=2, overdue=1)
    assert metrics.ticket_load(session, now=at(days=-20, hours=4)) == metrics.TicketLoad(
        open=2, overdue=0
    )


def test_capacity_now_counts_cores_where_known(session: Session, hosts: dict[str, Host]) -> None:
    assert metrics.capacity(session) == metrics.Capacity(
        devices=2,  # h2 draining (64 cores), h3 isolated (cores unknown)
        fleet=5,  # h6 is retired
        fraction=0.4,
        cores=64,
        fleet_cores=192,
        by_state={"draining": 1, "isolated": 1, "in_repair": 0, "verifying": 0},
    )
    rack = metrics.capacity(session, selector="rack=r01")
    assert (rack.devices, rack.fleet, rack.cores, rack.fleet_cores) == (1, 2, 64, 128)


def test_capacity_series_is_rebuilt_from_the_history(
    session: Session, hosts: dict[str, Host]
) -> None:
    series = metrics.capacity_series(session, now=T, hours=2)
    assert (series.hours, series.step_minutes, series.fleet, series.fleet_cores) == (2, 5, 5, 192)
    ends = [p.end for p in series.points]
    assert ends == [at(minutes=-120 + 5 * i) for i in range(1, 25)]
    assert [p.start for p in series.points] == [e - timedelta(minutes=5) for e in ends]
    # h1 out until 11:45, h2 from 10:20, h3 from 11:00 (a move at a bucket's end counts in it).
    assert [p.devices for p in series.points] == [1] * 3 + [2] * 8 + [3] * 9 + [2] * 4
    assert [p.cores for p in series.points] == [64] * 3 + [128] * 17 + [64] * 4

    later = metrics.capacity_series(session, now=at(minutes=7), hours=1)
    assert later.points[0].start == at(minutes=-55)
    assert (later.points[-1].start, later.points[-1].end) == (at(minutes=5), at(minutes=7))
    assert len(later.points) == 13
    assert [p.devices for p in later.points] == [3] * 7 + [2] * 6

    earlier = metrics.capacity_series(session, now=at(-2.5), hours=1)
    assert [p.devices for p in earlier.points][-1] == 1  # h1's drain at 09:30 is its end
    assert sum(p.devices for p in earlier.points) == 1


@pytest.mark.parametrize(("hours", "step"), [(1, 5), (10, 5), (24, 15), (168, 120), (720, 360)])
def test_bucket_size_keeps_the_series_short(hours: int, step: int) -> None:
    assert metrics.step_minutes(hours) == step
    assert hours * 60 / step <= metrics.MAX_POINTS


def test_metrics_api_for_viewers(client: TestClient, tokens: Tokens) -> None:
    url = "/api/v1/repairs/metrics"
    assert client.get(url).status_code == 401
    answer = client.get(url, params={"hours": 6}, headers=tokens.headers("viewer"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["series"]["hours"] == 6
    assert body["series"]["step_minutes"] == 5
    assert len(body["series"]["points"]) in (72, 73)
    assert body["mttr"] == {"tickets": 0, "mean_hours": None, "median_hours": None}
    assert body["tickets"] == {"open": 0, "overdue": 0}
    assert body["repeat"]["rate"] is None
    bad = client.get(url, params={"hours": 0}, headers=tokens.headers("viewer"))
    assert bad.status_code == 422
