"""The simulated scheduler: its quotas read and changed by the real operations through real
change runs on the simulated fleet, and a rollback restoring exactly what a change found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.analytics.resources.scheduler import Site
from fleetops.sim.executor import SimulatedExecutor
from fleetops.sim.scheduler import Quota, SimScheduler, from_trace
from tests.analytics.resources.test_apply import phase
from tests.analytics.resources.test_reports import LETTERS, decide, report_body, save, small_trace
from tests.dashboard.test_pages import csrf_of, log_in
from tests.fixtures.app import Tokens, seed_users, simulated_fleet_client
from tests.fixtures.waiting import wait_for


def test_a_rollback_restores_what_the_change_found() -> None:
    sim = SimScheduler(kind="kubernetes")
    sim.quotas["batch/deployment/spark-m/main"] = Quota("2", "4Gi")
    sim.quotas["batch/deployment/other/main"] = Quota("1", "1Gi")
    params = {"kind": "kubernetes", "requests": "batch/deployment/spark-m/main:500:1024"}
    assert sim.answer(phase("scheduler_requests", "run", change_id=3, **params))[0] == 0
    assert sim.answer(phase("scheduler_requests", "run", change_id=3, **params))[0] == 0
    assert sim.quotas["batch/deployment/spark-m/main"] == Quota("500m", "1024Mi")
    code, out, _ = sim.answer(phase("scheduler_quotas", "run", kind="kubernetes"))
    assert (code, out) == (
        0,
        "batch/Deployment/other main=1:1Gi\nbatch/Deployment/spark-m main=500m:1024Mi\n",
    )
    assert sim.answer(phase("scheduler_requests", "rollback", change_id=3, **params))[0] == 0
    assert sim.quotas["batch/deployment/spark-m/main"] == Quota("2", "4Gi")  # not the retry's
    missing = {"kind": "kubernetes", "requests": "batch/deployment/nope/main:1:1"}
    assert sim.answer(phase("scheduler_requests", "run", **missing))[:2] == (1, "")


def test_the_scheduler_is_seeded_with_a_traces_targets(tmp_path: Path) -> None:
    sim = from_trace(small_trace(tmp_path / "trace"), Site(), gb_per_memory_unit=0.96)
    # each task type's largest request: 0.5 core -> 1 vcore, 0.5 units x 0.96 GB = 492 MB
    assert sim.quotas == {f"root.batch.{x}": Quota("1", "492") for x in LETTERS}


@pytest.fixture
def scheduled(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, SimulatedExecutor]]:
    executor = SimulatedExecutor(seed=1)
    executor.scheduler = SimScheduler(
        kind="yarn", quotas={f"root.batch.{x}": Quota("4", "4096") for x in LETTERS}
    )
    with simulated_fleet_client(
        db_url, tmp_path / "data", executor, hosts=12, racks=2, resources_gb_per_memory_unit=0.96
    ) as client:
        yield client, executor


def change_state(client: TestClient, tokens: Tokens, change_id: int) -> str:
    got = client.get(f"/api/v1/changes/{change_id}", headers=tokens.headers("viewer"))
    return str(got.json()["state"])


def test_an_approved_change_updates_the_simulated_scheduler(
    scheduled: tuple[TestClient, SimulatedExecutor], db_url: str, tmp_path: Path
) -> None:
    client, executor = scheduled
    tokens = seed_users(db_url)
    collect = client.post(
        "/api/v1/resources/quotas/collect", json={}, headers=tokens.headers("developer")
    )
    assert collect.status_code == 201, collect.text
    assert collect.json()["state"] in ("approved", "scheduled", "running", "succeeded")
    wait_for(lambda: change_state(client, tokens, collect.json()["id"]) == "succeeded", timeout=60)
    before = quotas(client, tokens)
    assert {"target": "root.batch.A", "cpu": "4", "memory": "4096"} in before["quotas"]
    report_id = save(client, tokens, report_body(tmp_path)).json()["id"]
    kept = client.get(f"/api/v1/resources/reports/{report_id}", headers=tokens.headers("viewer"))
    ids = {(r["group"], r["resource"]): r["id"] for r in kept.json()["recommendations"]}
    for resource in ("cpu", "mem"):
        decide(client, tokens, ids[("A|0.5|0.5", resource)], "accept", "operator")
    change = client.post(
        f"/api/v1/resources/reports/{report_id}/apply", headers=tokens.headers("operator")
    ).json()
    assert change["state"] == "pending_approval"
    assert executor.scheduler is not None
    assert executor.scheduler.quotas["root.batch.A"] == Quota("4", "4096")  # nothing ran yet
    approved = client.post(
        f"/api/v1/changes/{change['id']}/approve", json={}, headers=tokens.headers("admin")
    )
    assert approved.status_code == 200, approved.text
    wait_for(lambda: change_state(client, tokens, change["id"]) == "succeeded", timeout=60)
    # KRR: 0.2 core -> 1 vcore; 0.23 units x 0.96 GB x 1024 -> 227 MB
    assert executor.scheduler.quotas["root.batch.A"] == Quota("1", "227")
    assert executor.scheduler.quotas["root.batch.B"] == Quota("4", "4096")
    after = quotas(client, tokens)
    assert after["change_id"] == change["id"]  # read back by the change itself
    assert {"target": "root.batch.A", "cpu": "1", "memory": "227"} in after["quotas"]


def quotas(client: TestClient, tokens: Tokens) -> Any:
    got = client.get("/api/v1/resources/quotas", headers=tokens.headers("viewer"))
    assert got.status_code == 200, got.text
    return got.json()


def test_the_page_decides_applies_and_shows_the_quotas(
    scheduled: tuple[TestClient, SimulatedExecutor], db_url: str, tmp_path: Path
) -> None:
    client, executor = scheduled
    tokens = seed_users(db_url)
    empty = log_in(client, "viewer")
    assert empty.status_code == 303
    assert "No resource report yet" in client.get("/analytics/resources").text
    report_id = save(client, tokens, report_body(tmp_path)).json()["id"]
    page = client.get("/analytics/resources")
    assert page.status_code == 200
    assert 'id="resource-groups"' in page.text
    assert 'id="resource-series"' in page.text  # the chart's data, for the newest report
    assert 'id="resource-wasters"' in page.text  # where requests go unused, linked to groups
    assert f'action="/analytics/resources/{report_id}/apply"' not in page.text  # a viewer
    kept = client.get(f"/api/v1/resources/reports/{report_id}", headers=tokens.headers("viewer"))
    ids = {(r["group"], r["resource"]): r["id"] for r in kept.json()["recommendations"]}
    rec = ids[("C|0.5|0.5", "cpu")]
    refused = client.post(
        f"/analytics/resources/recommendations/{rec}/accept",
        data={"csrf": csrf_of(page), "report": str(report_id)},
    )
    assert refused.status_code == 403  # a viewer does not decide
    client.cookies.clear()
    assert log_in(client, "operator").status_code == 303
    page = client.get(f"/analytics/resources?report={report_id}&group=C%7C0.5%7C0.5")
    assert "C|0.5|0.5 over time" in page.text
    accepted = client.post(
        f"/analytics/resources/recommendations/{rec}/accept",
        data={"csrf": csrf_of(page), "report": str(report_id)},
        follow_redirects=False,
    )
    assert accepted.status_code == 303, accepted.text
    applied = client.post(
        f"/analytics/resources/{report_id}/apply",
        data={"csrf": csrf_of(page)},
        follow_redirects=False,
    )
    assert applied.status_code == 303, applied.text
    change_id = int(applied.headers["location"].rsplit("/", 1)[1])
    approved = client.post(
        f"/api/v1/changes/{change_id}/approve", json={}, headers=tokens.headers("admin")
    )
    assert approved.status_code == 200, approved.text
    wait_for(lambda: change_state(client, tokens, change_id) == "succeeded", timeout=60)
    assert executor.scheduler is not None
    assert executor.scheduler.quotas["root.batch.C"] == Quota("1", "4096")
    shown = client.get("/analytics/resources").text
    assert '<td class="mono">root.batch.C</td><td class="num">1</td>' in shown
