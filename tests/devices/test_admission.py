"""New hardware enters service only through verification: `admit` starts it, a pass serves, a
failure is dead on arrival (in repair, with a ticket at `replace`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.sim.executor import SimulatedExecutor
from tests.changes.fleet import wait_for
from tests.fixtures.app import Tokens, seed_users, simulated_fleet_client


@pytest.fixture
def executor() -> SimulatedExecutor:
    return SimulatedExecutor(latency=0.01, seed=5)


@pytest.fixture
def app(
    db_url: str, tmp_path: Path, executor: SimulatedExecutor
) -> Iterator[tuple[TestClient, Tokens]]:
    users = seed_users(db_url)
    with simulated_fleet_client(db_url, tmp_path / "data", executor, hosts=8, racks=2) as client:
        yield client, users


def _hosts(client: TestClient, users: Tokens) -> list[str]:
    page = client.get("/api/v1/hosts", params={"limit": 8}, headers=users.headers("viewer"))
    return [h["hostname"] for h in page.json()["items"]]


def _device(client: TestClient, users: Tokens, host: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(
        f"/api/v1/devices/{host}", headers=users.headers("viewer")
    ).json()
    return found


def _provisioning(client: TestClient, users: Tokens, host: str) -> None:
    body = {"to": "provisioning", "reason": "racked, not yet accepted", "override": True}
    moved = client.post(
        f"/api/v1/devices/{host}/transition", json=body, headers=users.headers("operator")
    )
    assert moved.status_code == 200, moved.text


def test_new_hardware_serves_only_after_its_verification_passes(
    app: tuple[TestClient, Tokens], executor: SimulatedExecutor
) -> None:
    client, users = app
    good, doa, serving = _hosts(client, users)[:3]
    executor.hardware_faults.add(doa)  # its kernel log shows hardware errors from the start
    for host in (good, doa):
        _provisioning(client, users, host)

    op = users.headers("operator")
    admitted = client.post(f"/api/v1/devices/{good}/admit", json={"reason": "rack r1"}, headers=op)
    assert admitted.status_code == 201, admitted.text
    assert admitted.json()["state"] == "verifying"
    change = client.get(
        f"/api/v1/changes/{admitted.json()['change_id']}", headers=users.headers("viewer")
    ).json()
    assert change["workflow"] == "reintegrate-host"
    assert [h["hostname"] for h in change["hosts"]] == [good]
    assert (
        client.post(
            f"/api/v1/devices/{doa}/admit", json={"reason": "rack r1"}, headers=op
        ).status_code
        == 201
    )

    wait_for(
        lambda: _device(client, users, good)["state"] == "in_service",
        what=f"{good} to pass and serve",
        explain=lambda: _device(client, users, good),
    )
    assert _device(client, users, good)["change_id"] is None
    wait_for(
        lambda: _device(client, users, doa)["state"] == "in_repair",
        what=f"{doa} to fail its verification",
        explain=lambda: _device(client, users, doa),
    )
    [ticket] = client.get(
        "/api/v1/repairs", params={"host": doa}, headers=users.headers("viewer")
    ).json()["items"]
    assert ticket["action"] == "replace"
    assert ticket["status"] == "open"
    assert "acceptance verification" in ticket["symptoms"]
    assert not client.get(
        "/api/v1/repairs", params={"host": good}, headers=users.headers("viewer")
    ).json()["items"]

    # only provisioning devices are admitted, only by operators, only known hosts
    refused = client.post(f"/api/v1/devices/{serving}/admit", json={"reason": "x"}, headers=op)
    assert refused.status_code == 409, refused.text
    assert "in_service" in refused.text
    assert (
        client.post(
            f"/api/v1/devices/{serving}/admit",
            json={"reason": "x"},
            headers=users.headers("viewer"),
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/devices/no-such-host/admit", json={"reason": "x"}, headers=op
        ).status_code
        == 404
    )
    assert (
        client.post(f"/api/v1/devices/{serving}/admit", json={"reason": ""}, headers=op).status_code
        == 422
    )
    assert _device(client, users, serving)["state"] == "in_service"  # refused: nothing moved
