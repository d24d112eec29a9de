"""A rolling change over 20 real SSH hosts (aliases of one loopback sshd): threshold pause,
resume, then abort with rollback of the hosts already done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.adapters.ssh import SshConfig, SshExecutor
from fleetops.main import create_app
from tests.changes.fleet import approve, fleet_doc, load_fleet, wait_for, workflow
from tests.fixtures.app import Tokens, make_settings, seed_users
from tests.fixtures.sshd import SshServer


@pytest.fixture
def ssh_client(db_url: str, tmp_path: Path, ops_dir: Path, sshd: SshServer) -> Iterator[TestClient]:
    settings = make_settings(
        db_url,
        tmp_path / "data",
        operations_dir=ops_dir,
        engine_tick_seconds=0.05,
        budget_rack=1.0,
        budget_cluster=1.0,
    )
    ssh = SshExecutor(
        SshConfig(key_path=sshd.key_path, known_hosts=sshd.known_hosts, host_key_policy="strict")
    )
    with TestClient(create_app(settings, executors={"ssh": ssh})) as client:
        yield client


def _detail(client: TestClient, users: Tokens, cid: int) -> dict[str, Any]:
    result: dict[str, Any] = client.get(
        f"/api/v1/changes/{cid}", headers=users.headers("viewer")
    ).json()
    return result


def _until(client: TestClient, users: Tokens, cid: int, *states: str) -> dict[str, Any]:
    return wait_for(
        lambda: (d := _detail(client, users, cid))["state"] in states and d,
        what=f"change {cid} to be {'/'.join(states)}",
        explain=lambda: _detail(client, users, cid),
    )


def test_rolling_change_over_ssh(
    ssh_client: TestClient, db_url: str, sshd: SshServer, work_dir: Path, tmp_path: Path
) -> None:
    client = ssh_client
    gate = tmp_path / "gate"  # a file gate/<host> holds that host's step until it is removed
    gate.mkdir()
    users = seed_users(db_url)
    load_fleet(
        db_url,
        fleet_doc(20, 4, executor="ssh", address=sshd.address, port=sshd.port, user=sshd.user),
    )
    assert (
        client.post(
            "/api/v1/workflows",
            json={"source": workflow("25%")},
            headers=users.headers("developer"),
        ).status_code
        == 201
    )
    body = {
        "workflow": "append",
        "selector": "all",
        "title": "append over ssh",
        "params": {"dir": str(work_dir), "fail_on": "h006", "hold": 0.6, "gate": str(gate)},
    }
    submitted = client.post("/api/v1/changes", json=body, headers=users.headers("developer"))
    assert submitted.status_code == 201, submitted.text
    cid = submitted.json()["id"]
    approve(client.post, users, submitted.json())

    paused = _until(client, users, cid, "paused")
    assert "max_failures" in paused["status"]
    assert [h["hostname"] for h in paused["hosts"] if h["state"] == "failed"] == ["h006"]
    failed_batch = next(h["batch_index"] for h in paused["hosts"] if h["state"] == "failed")
    done_before = {p.name for p in work_dir.iterdir()}
    # Stopped with the batch that failed: everything before it done, nothing after it started.
    expected = {
        h["hostname"]
        for h in paused["hosts"]
        if h["batch_index"] <= failed_batch and h["hostname"] != "h006"
    }
    assert done_before == expected
    assert all(h["state"] == "pending" for h in paused["hosts"] if h["batch_index"] > failed_batch)

    # Hold all but one host of the next batch, so the run is still going when the abort comes.
    following = sorted(
        h["hostname"] for h in paused["hosts"] if h["batch_index"] == failed_batch + 1
    )
    assert len(following) > 1
    for hostname in following[1:]:
        (gate / hostname).touch()
    op = users.headers("operator")
    assert client.post(f"/api/v1/changes/{cid}/resume", json={}, headers=op).status_code == 200
    wait_for(lambda: (work_dir / following[0]).exists(), what="progress after resume")
    assert (
        client.post(
            f"/api/v1/changes/{cid}/abort", json={"reason": "enough"}, headers=op
        ).status_code
        == 200
    )
    for held in gate.iterdir():
        held.unlink()
    end = _until(client, users, cid, "rolled_back", "aborted")
    assert end["state"] == "rolled_back", end["status"]
    assert list(work_dir.iterdir()) == []  # the rollback removed every file the run wrote
    steps = client.get(f"/api/v1/changes/{cid}/steps", headers=users.headers("viewer")).json()
    rolled = {
        s["hostname"] for s in steps if s["phase"] == "rollback" and s["state"] == "succeeded"
    }
    assert done_before <= rolled
