"""With `isolation_preapproved` off, an isolation is an ordinary change: it waits for an operator's
approval while the device stays draining (still serving), then runs like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleetops.sim.executor import SimulatedExecutor
from tests.devices.factory import hardware_findings
from tests.fixtures.app import seed_users, simulated_fleet_client
from tests.fixtures.waiting import policy_passes, wait_for


def test_an_isolation_waits_for_approval_when_not_preapproved(db_url: str, tmp_path: Path) -> None:
    users = seed_users(db_url)
    with simulated_fleet_client(
        db_url,
        tmp_path / "data",
        SimulatedExecutor(latency=0.01),
        hosts=40,
        racks=4,
        isolation_preapproved=False,
    ) as client:
        viewer = users.headers("viewer")

        def device() -> dict[str, Any]:
            found: dict[str, Any] = client.get("/api/v1/devices/dn-0001", headers=viewer).json()
            return found

        hardware_findings(db_url, "dn-0001")
        change_id = wait_for(lambda: device()["change_id"], what="the isolation change")
        change = client.get(f"/api/v1/changes/{change_id}", headers=viewer).json()
        assert (change["state"], change["approvals_required"]) == ("pending_approval", 1)
        policy_passes(client)  # nothing runs without the approval
        assert device()["state"] == "draining"
        vote = client.post(
            f"/api/v1/changes/{change_id}/approve",
            json={"comment": "disk looks dead"},
            headers=users.headers("operator"),
        )
        assert vote.status_code == 200, vote.text
        wait_for(lambda: device()["state"] == "isolated", what="isolation", explain=device)
