"""A flood of refused calls is counted, not copied: the first of a kind per minute is a row at
once, the rest one row with their count, and the chain still verifies."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.refusals import OVERFLOW, RefusalLog
from fleetops.audit.service import AuditContext
from fleetops.config import Settings
from fleetops.db import make_session_factory
from fleetops.main import create_app
from fleetops.models import AuditRecord
from tests.fixtures.app import Tokens, refusal_counts


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 10, 0, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def rows(engine: Engine) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditRecord).order_by(AuditRecord.id)))


def refuse(log: RefusalLog, source: str, path: str = "/api/v1/hosts") -> None:
    log.refuse(
        AuditContext(actor="anonymous", source=source),
        action="http.get",
        entity_type="route",
        entity_id=path,
        outcome="unauthenticated",
        group="/api/v1/hosts/{name}",
    )


def test_repeats_of_a_minute_become_one_counted_row(engine: Engine) -> None:
    clock = Clock()
    log = RefusalLog(make_session_factory(engine), clock=clock)
    for i in range(50):
        refuse(log, "198.51.100.7", f"/api/v1/hosts/h{i % 3}")
    refuse(log, "192.0.2.1")
    assert [(r.source, r.after) for r in rows(engine)] == [
        ("198.51.100.7", None),
        ("192.0.2.1", None),
    ]  # each kind's first, at once
    assert log.pending() == 49
    assert log.flush() == 0  # the minute is not over
    clock.now += timedelta(seconds=55)
    refuse(log, "198.51.100.7")  # a new minute: its first is a row, the last minute's count too
    written = rows(engine)
    assert [(r.source, r.after and r.after["repeats"]) for r in written[2:]] == [
        ("198.51.100.7", 49),
        ("198.51.100.7", None),
    ]
    assert written[2].after["entities"] == ["/api/v1/hosts/h1", "/api/v1/hosts/h2",
                                            "/api/v1/hosts/h0"]  # fmt: skip
    with Session(engine) as session:
        assert audit.verify(session).ok


def test_many_sources_share_an_overflow_count(engine: Engine) -> None:
    log = RefusalLog(make_session_factory(engine), clock=Clock(), max_open=3)
    for i in range(200):
        refuse(log, f"10.0.{i // 250}.{i % 250}")
    log.flush(everything=True)
    written = rows(engine)
    assert len(written) == 5  # three sources, the overflow's first and its count
    assert [r.source for r in written[3:]] == [OVERFLOW, OVERFLOW]
    assert written[4].after["repeats"] == 196


def test_concurrent_refusals_are_all_counted(engine: Engine) -> None:
    log = RefusalLog(make_session_factory(engine), clock=Clock())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: refuse(log, f"10.1.0.{i % 4}"), range(400)))
    log.flush(everything=True)
    total = sum((r.after or {}).get("repeats", 1) for r in rows(engine))
    assert total == 400
    assert len(rows(engine)) == 8


def test_a_flood_of_bad_tokens_stays_a_few_rows(client: TestClient, tokens: Tokens) -> None:
    bad = {"Authorization": "Bearer fo_not_a_token"}
    for _ in range(120):
        assert client.get("/api/v1/hosts", headers=bad).status_code == 401
    forbidden = client.post("/api/v1/racks", json={}, headers=tokens.headers("viewer"))
    assert forbidden.status_code == 403
    before = client.get(
        "/api/v1/audit", params={"action": "http.*"}, headers=tokens.headers("admin")
    ).json()["total"]
    # A row per kind so far, the repeats waiting for the minute's end (one more row, and a
    # count, if a minute ended while the calls ran).
    assert 2 <= before <= 4
    counts = refusal_counts(client, tokens.headers("admin"), action="http.*")
    assert counts == {
        ("anonymous", "/api/v1/hosts", "unauthenticated"): 120,
        ("viewer", "/api/v1/racks", "forbidden"): 1,
    }


def test_counted_refusals_are_written_when_the_server_stops(
    settings: Settings, engine: Engine
) -> None:
    with TestClient(create_app(settings)) as client:
        for _ in range(5):
            client.get("/api/v1/hosts", headers={"Authorization": "Bearer fo_nope"})
    refused = [r for r in rows(engine) if r.outcome == "unauthenticated"]
    assert sum((r.after or {}).get("repeats", 1) for r in refused) == 5
    assert any((r.after or {}).get("repeats") for r in refused)  # counted, not copied
    assert len(refused) <= 3  # (a minute may have ended between the calls)
