"""Freeze windows, mutual exclusion, unreachable hosts and secrets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.adapters.local import LocalExecutor
from fleetops.main import create_app
from fleetops.models import utcnow
from fleetops.sim.executor import SimulatedExecutor
from tests.changes.fleet import (
    SECRET_OP,
    SECRET_WORKFLOW,
    approve,
    fleet_doc,
    load_fleet,
    wait_for,
    workflow,
)
from tests.fixtures.app import Tokens, make_settings, seed_users

SECRET = "s3cr3t-value-never-shown"
# A careless operation that prints the secret it reads, and fails quoting it.
ECHO_SECRET_OP = """
name: echo_secret
version: 1
description: Print the token it was given, then fail.
risk: low
timeout: 10
params:
  token: {type: string, required: true, secret: true}
run: "cat; cat >&2; exit 1"
stdin: "{{ token }}"
"""


@pytest.fixture
def client(db_url: str, tmp_path: Path, ops_dir: Path) -> Iterator[TestClient]:
    (ops_dir / "with_secret.yaml").write_text(SECRET_OP)
    (ops_dir / "echo_secret.yaml").write_text(ECHO_SECRET_OP)
    settings = make_settings(
        db_url,
        tmp_path / "data",
        operations_dir=ops_dir,
        engine_tick_seconds=0.05,
        executor="simulated",
        local_executor_hosts=["h*"],  # the lab's hosts labelled `executor: local` are this machine
        budget_rack=1.0,
        budget_cluster=1.0,
    )
    executors = {
        "local": LocalExecutor(),
        "simulated": SimulatedExecutor(seed=3, unreachable={"h002"}),
    }
    with TestClient(create_app(settings, executors=executors)) as c:
        yield c


def _submit(
    client: TestClient, users: Tokens, workflow_name: str, selector: str, params: dict[str, Any]
) -> dict[str, Any]:
    body = {"workflow": workflow_name, "selector": selector, "title": "t", "params": params}
    response = client.post("/api/v1/changes", json=body, headers=users.headers("developer"))
    assert response.status_code == 201, response.text
    change: dict[str, Any] = response.json()
    approve(client.post, users, change)
    return change


def _get(client: TestClient, users: Tokens, cid: int) -> dict[str, Any]:
    result: dict[str, Any] = client.get(
        f"/api/v1/changes/{cid}", headers=users.headers("viewer")
    ).json()
    return result


def test_freeze_window_holds_changes_back(client: TestClient, db_url: str, work_dir: Path) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, fleet_doc(20, 2, executor="local"))
    now = utcnow()
    freeze = {
        "name": "black friday",
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "reason": "peak traffic",
    }
    assert (
        client.post("/api/v1/freezes", json=freeze, headers=users.headers("operator")).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/workflows", json={"source": workflow()}, headers=users.headers("developer")
        ).status_code
        == 201
    )
    change = _submit(client, users, "append", "h001", {"dir": str(work_dir)})
    held = wait_for(
        lambda: "freeze window" in (d := _get(client, users, change["id"]))["status"] and d,
        what="the freeze to hold the change",
    )
    assert held["hosts_by_state"] == {"pending": 1}
    assert list(work_dir.iterdir()) == []


def test_a_host_is_never_worked_on_by_two_changes_at_once(
    client: TestClient, db_url: str, work_dir: Path
) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, fleet_doc(20, 2, executor="local"))
    assert (
        client.post(
            "/api/v1/workflows", json={"source": workflow()}, headers=users.headers("developer")
        ).status_code
        == 201
    )
    first = _submit(client, users, "append", "h001", {"dir": str(work_dir), "hold": 1.5})
    wait_for(
        lambda: _get(client, users, first["id"])["hosts_by_state"].get("running"),
        what="the first change to hold h001",
    )
    second = _submit(client, users, "append", "h001", {"dir": str(work_dir)})
    waiting = wait_for(
        lambda: "held by change" in (d := _get(client, users, second["id"]))["status"] and d,
        what="the second change to wait",
    )
    assert f"change(s) {first['id']}" in waiting["status"]
    for cid in (first["id"], second["id"]):
        wait_for(
            lambda cid=cid: _get(client, users, cid)["state"] == "succeeded", what=f"change {cid}"
        )
    assert (work_dir / "h001").read_text() == f"{first['id']}\n{second['id']}\n"


def test_unreachable_host_fails_that_host_only(client: TestClient, db_url: str) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, fleet_doc(20, 2, executor="simulated"))
    assert (
        client.post(
            "/api/v1/workflows",
            json={"source": SECRET_WORKFLOW},
            headers=users.headers("developer"),
        ).status_code
        == 201
    )
    change = _submit(client, users, "secretive", "h00[1-3]", {"token": SECRET})
    done = wait_for(
        lambda: (
            (d := _get(client, users, change["id"]))["state"] in ("failed", "paused", "succeeded")
            and d
        ),
        what="the end",
    )
    states = {h["hostname"]: (h["state"], h["error"]) for h in done["hosts"]}
    assert states["h002"][0] == "failed"
    assert "unreachable" in states["h002"][1]
    assert {states["h001"][0], states["h003"][0]} == {"succeeded"}


def test_secrets_never_leave_the_server(client: TestClient, db_url: str) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, fleet_doc(20, 2, executor="simulated"))
    assert (
        client.post(
            "/api/v1/workflows",
            json={"source": SECRET_WORKFLOW},
            headers=users.headers("developer"),
        ).status_code
        == 201
    )
    change = _submit(client, users, "secretive", "h001", {"token": SECRET})
    assert change["params"] == {"token": "***"}
    wait_for(lambda: _get(client, users, change["id"])["state"] == "succeeded", what="success")
    admin = users.headers("admin")
    seen = [
        client.get(f"/api/v1/changes/{change['id']}", headers=admin).text,
        client.get(f"/api/v1/changes/{change['id']}/steps", headers=admin).text,
        client.get("/api/v1/changes", headers=admin).text,
        client.get("/api/v1/audit", params={"limit": 1000}, headers=admin).text,
    ]
    assert all(SECRET not in text for text in seen)


def test_a_secret_echoed_by_a_step_is_masked_in_what_is_recorded(
    client: TestClient, db_url: str
) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, fleet_doc(20, 2, executor="simulated"))
    source = SECRET_WORKFLOW.replace("with_secret", "echo_secret").replace("secretive", "echo")
    registered = client.post(
        "/api/v1/workflows", json={"source": source}, headers=users.headers("developer")
    )
    assert registered.status_code == 201, registered.text
    change = _submit(client, users, "echo", "h001", {"token": SECRET})
    done = wait_for(
        lambda: (d := _get(client, users, change["id"]))["state"] in ("failed", "paused") and d,
        what="the failure",
    )
    admin = users.headers("admin")
    steps = client.get(f"/api/v1/changes/{change['id']}/steps", headers=admin).json()
    assert steps
    assert {s["stdout"] for s in steps} == {"***"}
    assert SECRET not in str(done)
    assert SECRET not in str(steps)
