"""The diagnosis JSON API on both databases, over rows written straight into the rollup tables.

The stream aggregation that normally writes these tables is tested on its own; here the rows are
known exactly, so every merge, filter and bound can be checked to the number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.audit.service import AuditContext
from fleetops.config import Settings
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.logs.diagnosis.repository import InvalidRange, resolve_range
from fleetops.models import (
    HostErrorCount,
    HostTaskWindow,
    LatencyWindow,
    LinkWindow,
    LogJob,
    LogTemplate,
    TemplateCount,
    utcnow,
)
from fleetops.sim.fleet import generate
from tests.fixtures.app import Tokens, make_settings

API = "/api/v1/diagnosis"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Nothing in the background: the rollup tables hold exactly what a test writes."""
    return make_settings(db_url, tmp_path / "data", ingest_enabled=False, engine_enabled=False)


def minute(now: datetime, back: int) -> datetime:
    """The start of the minute `back` minutes before `now`'s minute."""
    return now.replace(second=0, microsecond=0) - timedelta(minutes=back)


def write(db_url: str, *rows: Any) -> None:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        session.add_all(rows)
    engine.dispose()


def latency(start: datetime, *, seconds: int = 10, metric: str = "job", p50: float = 30.0) -> Any:
    return LatencyWindow(
        start=start,
        seconds=seconds,
        metric=metric,
        count=3,
        p50=p50,
        p95=p50 * 2,
        p99=p50 * 3,
        max=p50 * 4,
        sketch={},
    )


def link(
    start: datetime,
    src: str = "r001",
    dst: str = "r002",
    *,
    seconds: int = 60,
    transfers: int = 10,
    slow: int = 0,
    p50: float | None = 5.0,
    p95: float | None = 9.0,
) -> Any:
    return LinkWindow(
        start=start,
        seconds=seconds,
        src_rack=src,
        dst_rack=dst,
        transfers=transfers,
        bytes=transfers * 1_000_000,
        slow=slow,
        p50_ms=p50,
        p95_ms=p95,
        mbps_p50=None if p50 is None else 100.0 / p50,
    )


def job(app_id: str, *, state: str, started: datetime, seconds: float | None) -> Any:
    finished = started + timedelta(seconds=seconds) if seconds is not None else None
    return LogJob(
        app_id=app_id,
        host="rm-1",
        state=state,
        started_at=started,
        finished_at=finished,
        duration_s=seconds,
        tasks_finished=12,
        tasks_failed=1 if state == "failed" else 0,
    )


def get(client: TestClient, tokens: Tokens, path: str, **params: Any) -> Any:
    response = client.get(f"{API}{path}", params=params, headers=tokens.headers("viewer"))
    assert response.status_code == 200, response.text
    return response.json()


def starts(points: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(p["start"]) for p in points]


# --- latency -------------------------------------------------------------------------------------


def test_latency_is_the_range_s_windows_oldest_first(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    now = utcnow().replace(microsecond=0)
    recent = [now - timedelta(seconds=s) for s in (40, 30, 20)]
    write(
        db_url,
        *(latency(t, p50=10.0 + i) for i, t in enumerate(recent)),
        latency(now - timedelta(minutes=30)),  # outside the default 15 minutes
        latency(minute(now, 2), seconds=60),  # another window length
        latency(now - timedelta(seconds=20), metric="task", p50=850.0),
    )
    body = get(client, tokens, "/latency")
    assert body["metric"] == "job"
    assert body["seconds"] == 10
    assert body["unit"] == "s"
    assert starts(body["points"]) == recent
    assert body["points"][0] == {
        "start": body["points"][0]["start"],
        "count": 3,
        "p50": 10.0,
        "p95": 20.0,
        "p99": 30.0,
        "max": 40.0,
    }
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert span == timedelta(minutes=15)

    tasks = get(client, tokens, "/latency", metric="task")
    assert tasks["unit"] == "ms"
    assert [p["p50"] for p in tasks["points"]] == [850.0]
    assert len(get(client, tokens, "/latency", seconds=60)["points"]) == 1
    assert len(get(client, tokens, "/latency", range="1h")["points"]) == 4


def test_explicit_range_and_naive_times_are_utc(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    old = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)
    write(db_url, latency(old), latency(old + timedelta(seconds=10)))
    body = get(
        client, tokens, "/latency", **{"from": "2026-03-01T12:00:00", "to": "2026-03-01T12:00:15"}
    )
    assert starts(body["points"]) == [old]
    assert body["from"].startswith("2026-03-01T12:00:00")
    shifted = get(
        client,
        tokens,
        "/latency",
        **{"from": "2026-03-01T13:00:00+01:00", "to": "2026-03-01T12:01Z"},
    )
    assert starts(shifted["points"]) == [old, old + timedelta(seconds=10)]
    alone = client.get(
        f"{API}/latency", params={"from": "2026-03-01T12:00:00Z"}, headers=tokens.headers("viewer")
    )
    assert alone.status_code == 400  # `to` is now: more than a day later
    assert "24 h" in alone.json()["detail"]


# --- jobs ----------------------------------------------------------------------------------------


def test_jobs_slowest_or_recent_filtered_by_state_and_range(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    now = utcnow()
    write(
        db_url,
        job("app_fast", state="finished", started=now - timedelta(minutes=5), seconds=30),
        job("app_slow", state="finished", started=now - timedelta(minutes=10), seconds=400),
        job("app_failed", state="failed", started=now - timedelta(minutes=4), seconds=90),
        job("app_running", state="running", started=now - timedelta(minutes=1), seconds=None),
        job("app_old", state="finished", started=now - timedelta(hours=3), seconds=999),
    )
    slowest = get(client, tokens, "/jobs")
    assert [j["app_id"] for j in slowest] == ["app_slow", "app_failed", "app_fast", "app_running"]
    assert slowest[0]["duration_s"] == 400.0
    assert slowest[0]["tasks_finished"] == 12
    recent = get(client, tokens, "/jobs", order="recent")
    assert [j["app_id"] for j in recent] == ["app_running", "app_failed", "app_fast", "app_slow"]
    assert [j["app_id"] for j in get(client, tokens, "/jobs", state="failed")] == ["app_failed"]
    assert len(get(client, tokens, "/jobs", limit=2)) == 2
    day = get(client, tokens, "/jobs", range="24h")
    assert day[0]["app_id"] == "app_old"


# --- links ---------------------------------------------------------------------------------------


def test_link_matrix_merges_windows_per_cell_and_lists_every_rack(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        apply_document(session, AuditContext(actor="test"), generate(hosts=6, racks=3))
    engine.dispose()
    now = utcnow()
    write(
        db_url,
        link(minute(now, 3), transfers=10, slow=1, p50=5.0, p95=9.0),
        link(minute(now, 2), transfers=30, slow=9, p50=10.0, p95=20.0),
        link(minute(now, 1), transfers=4, slow=4, p50=None, p95=None),  # failed transfers only
        link(minute(now, 2), "r002", "r001", transfers=5),
        link(minute(now, 2), seconds=10, transfers=1000),  # the 10 s copy of the same minute
        link(minute(now, 40), transfers=1000),  # outside the range
    )
    matrix = get(client, tokens, "/links")
    assert matrix["seconds"] == 60
    assert matrix["racks"] == ["r001", "r002", "r003"]
    cells = {(c["src_rack"], c["dst_rack"]): c for c in matrix["cells"]}
    assert set(cells) == {("r001", "r002"), ("r002", "r001")}
    cell = cells[("r001", "r002")]
    assert cell["transfers"] == 44
    assert cell["bytes"] == 44_000_000
    assert cell["slow"] == 14
    assert cell["slow_fraction"] == pytest.approx(14 / 44, abs=1e-4)
    assert cell["p95_ms"] == 20.0  # the worst window
    assert cell["p50_ms"] == pytest.approx((5 * 10 + 10 * 30) / 40)  # weighted, nulls left out
    assert cell["mbps_p50"] == pytest.approx((20 * 10 + 10 * 30) / 40)
    assert cell["windows"] == 3
    assert get(client, tokens, "/links", seconds=10)["cells"][0]["transfers"] == 1000

    series = get(client, tokens, "/links/r001/r002")
    assert starts(series["points"]) == [minute(now, 3), minute(now, 2), minute(now, 1)]
    assert [p["slow"] for p in series["points"]] == [1, 9, 4]
    assert series["points"][2]["p95_ms"] is None
    assert get(client, tokens, "/links/r009/r001")["points"] == []


# --- hosts and templates ------------------------------------------------------------------------


def test_host_tasks_and_errors(client: TestClient, tokens: Tokens, db_url: str) -> None:
    now = utcnow()
    write(
        db_url,
        HostTaskWindow(
            start=minute(now, 2),
            host="dn-1",
            tasks=20,
            failed=1,
            p50_ms=900.0,
            p95_ms=2000.0,
            ratio=2.5,
        ),
        HostTaskWindow(
            start=minute(now, 1),
            host="dn-1",
            tasks=18,
            failed=0,
            p50_ms=800.0,
            p95_ms=1500.0,
            ratio=None,
        ),
        HostTaskWindow(
            start=minute(now, 1), host="dn-2", tasks=5, failed=0, p50_ms=1.0, p95_ms=1.0, ratio=1.0
        ),
        HostErrorCount(start=minute(now, 2), host="dn-1", signature="disk_io", count=4),
        HostErrorCount(start=minute(now, 1), host="dn-1", signature="disk_io", count=6),
        HostErrorCount(start=minute(now, 1), host="dn-1", signature="xfs", count=1),
    )
    tasks = get(client, tokens, "/hosts/dn-1/tasks")
    assert tasks["host"] == "dn-1"
    assert [(p["tasks"], p["ratio"]) for p in tasks["points"]] == [(20, 2.5), (18, None)]
    errors = get(client, tokens, "/hosts/dn-1/errors")
    assert errors["totals"] == {"disk_io": 10, "xfs": 1}
    assert [(p["signature"], p["count"]) for p in errors["points"]] == [
        ("disk_io", 4),
        ("disk_io", 6),
        ("xfs", 1),
    ]
    assert get(client, tokens, "/hosts/nobody/errors")["points"] == []


def test_template_counts(client: TestClient, tokens: Tokens, db_url: str) -> None:
    now = utcnow()
    write(
        db_url,
        LogTemplate(id=7, text="Receiving block <*>", count=99, first_seen=now, last_seen=now),
        TemplateCount(start=minute(now, 3), template_id=7, count=40, hosts=3),
        TemplateCount(start=minute(now, 1), template_id=7, count=55, hosts=4),
        TemplateCount(start=minute(now, 1), template_id=8, count=1, hosts=1),
    )
    body = get(client, tokens, "/templates/7/counts")
    assert body["text"] == "Receiving block <*>"
    assert [(p["count"], p["hosts"]) for p in body["points"]] == [(40, 3), (55, 4)]
    missing = client.get(f"{API}/templates/12345/counts", headers=tokens.headers("viewer"))
    assert missing.status_code == 404
    assert "template 12345 not found" in missing.json()["detail"]


# --- validation and access ----------------------------------------------------------------------


BAD_PARAMETERS = [
    ("/latency", {"seconds": "30"}, 422, "10 or 60"),
    ("/latency", {"metric": "disk"}, 422, "metric"),
    ("/latency", {"range": "2h"}, 422, "range"),
    ("/latency", {"from": "yesterday"}, 422, "from"),
    ("/latency", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 400, "before"),
    ("/links", {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:01Z"}, 400, "24 h"),
    ("/links", {"range": "1h", "from": "2026-01-01T00:00:00Z"}, 400, "either"),
    ("/latency", {"to": "0001-01-01T00:01:00"}, 400, "representable"),
    ("/jobs", {"state": "lost"}, 422, "state"),
    ("/jobs", {"order": "fastest"}, 422, "order"),
    ("/jobs", {"limit": "0"}, 422, "limit"),
    ("/jobs", {"limit": "501"}, 422, "limit"),
    ("/templates/0/counts", {}, 422, "template_id"),
    (f"/templates/{2**31}/counts", {}, 422, "template_id"),
    (f"/hosts/{'h' * 256}/tasks", {}, 422, "host"),
    (f"/links/{'r' * 65}/r001", {}, 422, "src_rack"),
]


def test_parameters_are_validated(client: TestClient, tokens: Tokens) -> None:
    for path, params, status, says in BAD_PARAMETERS:
        response = client.get(f"{API}{path}", params=params, headers=tokens.headers("viewer"))
        assert response.status_code == status, (path, params, response.text)
        assert says in response.json()["detail"], (path, params, response.text)


ENDPOINTS = [
    "/latency",
    "/jobs",
    "/links",
    "/links/r001/r002",
    "/hosts/h1/tasks",
    "/hosts/h1/errors",
    "/templates/1/counts",
]


@pytest.fixture
def ingest_header(client: TestClient, tokens: Tokens) -> dict[str, str]:
    response = client.post(
        "/api/v1/logs/tokens", json={"name": "shipper"}, headers=tokens.headers("admin")
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_every_endpoint_needs_a_user(
    client: TestClient, tokens: Tokens, ingest_header: dict[str, str]
) -> None:
    for path in ENDPOINTS:
        assert client.get(f"{API}{path}").status_code == 401, path
        assert client.get(f"{API}{path}", headers=ingest_header).status_code == 401, path
        answer = client.get(f"{API}{path}", headers=tokens.headers("viewer"))
        assert answer.status_code == (404 if "templates" in path else 200), path


def test_resolve_range_rules() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    default = resolve_range(start=None, end=None, last=None, now=now)
    assert (default.start, default.end) == (now - timedelta(minutes=15), now)
    day = resolve_range(start=None, end=None, last="24h", now=now)
    assert day.span == timedelta(hours=24)
    until = datetime(2026, 5, 1, 9, 0)  # naive: UTC
    given = resolve_range(start=None, end=until, last="1h", now=now)
    assert given.start == datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(InvalidRange, match="unknown range"):
        resolve_range(start=None, end=None, last="7d", now=now)
