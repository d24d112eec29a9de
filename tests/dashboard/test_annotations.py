"""Chart annotations: each kind of event, at its time, with its title and link; the range's
validation; who may read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.document import InventoryDoc
from fleetops.models import ChangeRequest, DeviceTransition, Host, Workflow
from tests.findings.factory import report
from tests.fixtures.app import Tokens

NOW = datetime.now(UTC).replace(microsecond=0)


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


def seed(db_url: str, host: str) -> dict[str, int]:
    """A patch that ran 40-30 min ago, a link switch 20-15 min ago, an old change,
    a host isolated 25 min ago and back 5 min ago, a critical finding opened 10 min ago.

    The changes are over: the dashboard's app runs the change engine, which would finish a
    running change with no hosts while the test reads."""
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        workflows = {}
        for name in ("os-patch", "shift-link"):  # the standard ones, or a stand-in
            found = session.scalar(select(Workflow.id).where(Workflow.name == name).limit(1))
            if found is None:
                wf = Workflow(name=name, version=1, source="", created_by="test")
                session.add(wf)
                session.flush()
                found = wf.id
            workflows[name] = found

        def change(title: str, workflow: str, state: str, start: int, end: int) -> int:
            row = ChangeRequest(
                title=title,
                workflow_id=workflows[workflow],
                selector="all",
                risk="low",
                state=state,
                requester="dev",
                started_at=ago(start),
                finished_at=ago(end),
            )
            session.add(row)
            session.flush()
            return row.id

        ids = {
            "patch": change("patch rack r001", "os-patch", "succeeded", 40, 30),
            "link": change("move h001 to its spare link", "shift-link", "succeeded", 20, 15),
            "old": change("last week", "os-patch", "failed", 60 * 24 * 3, 60 * 24 * 3 - 10),
        }
        host_id = session.scalar(select(Host.id).where(Host.hostname == host))
        for minutes, src, dst in ((25, "in_service", "isolated"), (5, "verifying", "in_service")):
            session.add(
                DeviceTransition(
                    host_id=host_id,
                    from_state=src,
                    to_state=dst,
                    actor="test",
                    reason="disk errors" if dst == "isolated" else "verified",
                    at=ago(minutes),
                )
            )
        # Inside the lifecycle, not across the service boundary: not a mark.
        session.add(
            DeviceTransition(
                host_id=host_id,
                from_state="isolated",
                to_state="in_repair",
                actor="test",
                reason="ticket",
                at=ago(15),
            )
        )
        finding, _ = report(
            session,
            entity=host,
            severity="critical",
            title=f"{host}: disk I/O errors",
            now=ago(10),
        )
        ids["finding"] = finding.id
    engine.dispose()
    return ids


@pytest.fixture
def seeded(client: TestClient, db_url: str, fleet: InventoryDoc) -> dict[str, int]:
    return seed(db_url, fleet.hosts[0].hostname)


def marks(client: TestClient, tokens: Tokens, query: str, role: str = "viewer") -> Any:
    answer = client.get(f"/api/v1/annotations?{query}", headers=tokens.headers(role))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_every_kind_at_its_time_with_its_title_and_link(
    client: TestClient, tokens: Tokens, seeded: dict[str, int], fleet: InventoryDoc
) -> None:
    host = fleet.hosts[0].hostname
    body = marks(client, tokens, "range=1h")
    patch, link, finding = seeded["patch"], seeded["link"], seeded["finding"]
    found = [(m["kind"], m["event"], m["title"], m["href"]) for m in body["items"]]
    assert found == [
        ("change", "started", f"#{patch} patch rack r001", f"/changes/{patch}"),
        ("change", "finished", f"#{patch} patch rack r001", f"/changes/{patch}"),
        ("isolation", "out of service", f"{host}: in service → isolated", f"/devices/{host}"),
        ("link", "started", f"#{link} move h001 to its spare link", f"/changes/{link}"),
        ("link", "finished", f"#{link} move h001 to its spare link", f"/changes/{link}"),
        ("finding", "opened", f"{host}: disk I/O errors", f"/findings/{finding}"),
        ("isolation", "back in service", f"{host}: verifying → in service", f"/devices/{host}"),
    ]
    times = [datetime.fromisoformat(m["at"]) for m in body["items"]]
    assert times == [ago(40), ago(30), ago(25), ago(20), ago(15), ago(10), ago(5)]
    by_kind = {m["kind"]: m for m in body["items"]}
    assert by_kind["finding"]["severity"] == "critical"
    assert by_kind["link"]["detail"] == "succeeded"
    assert by_kind["isolation"]["detail"] == "verified"
    assert body["truncated"] is False


def test_kinds_filter_and_an_explicit_range(
    client: TestClient, tokens: Tokens, seeded: dict[str, int]
) -> None:
    only = marks(client, tokens, "range=1h&kinds=link,finding")
    assert [m["kind"] for m in only["items"]] == ["link", "link", "finding"]
    assert only["kinds"] == ["finding", "link"]
    changes = marks(client, tokens, "range=1h&kinds=change")
    assert {m["href"] for m in changes["items"]} == {f"/changes/{seeded['patch']}"}

    since, until = (ago(60 * 24 * 4), ago(60 * 24 * 2))
    old = marks(client, tokens, f"from={since:%Y-%m-%dT%H:%M:%SZ}&to={until:%Y-%m-%dT%H:%M:%SZ}")
    assert [(m["event"], m["detail"]) for m in old["items"]] == [
        ("started", "failed"),
        ("ended", "failed"),
    ]


def test_the_latest_marks_are_kept_when_the_range_holds_more(
    client: TestClient, tokens: Tokens, seeded: dict[str, int]
) -> None:
    body = marks(client, tokens, "range=1h&limit=2")
    assert body["truncated"] is True
    assert [m["event"] for m in body["items"]] == ["opened", "back in service"]


@pytest.mark.parametrize(
    ("query", "loc", "message"),
    [
        ("range=2h", "range", "Input should be"),
        ("from=yesterday", "from", "ISO 8601"),
        ("kinds=change,deploy", "kinds", "should match pattern"),
        ("limit=0", "limit", "greater than or equal to 1"),
    ],
)
def test_a_malformed_parameter_is_a_422_naming_it(
    client: TestClient, tokens: Tokens, query: str, loc: str, message: str
) -> None:
    answer = client.get(f"/api/v1/annotations?{query}", headers=tokens.headers("viewer"))
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "ValidationError"
    [error] = body["errors"]
    assert error["loc"] == ["query", loc]
    assert message in error["msg"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("range=1h&from=2026-11-26T12:00:00Z", "range: give either `range` or `from`/`to`"),
        ("from=2026-11-26T12:00:00Z&to=2026-11-26T11:00:00Z", "to: `to` must be after `from`"),
        ("from=2026-09-01T00:00:00Z&to=2026-11-26T00:00:00Z", "from: a range spans at most 31"),
    ],
)
def test_parameters_that_make_no_range_together_are_a_400_naming_one(
    client: TestClient, tokens: Tokens, query: str, message: str
) -> None:
    answer = client.get(f"/api/v1/annotations?{query}", headers=tokens.headers("viewer"))
    assert answer.status_code == 400
    assert message in answer.json()["detail"]


def test_every_role_reads_and_nobody_anonymous(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/api/v1/annotations").status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.get("/api/v1/annotations", headers=bad).status_code == 401
    for role in ("viewer", "developer", "operator", "admin"):
        assert marks(client, tokens, "range=15m", role)["items"] == []
