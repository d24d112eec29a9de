"""With `isolation_preapproved` off, an isolation is an ordinary change: it waits for an operator's
approval while the device stays draining (still serving), then runs like any other."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.main import create_app
from fleetops.sim.executor import SimulatedExecutor
from fleetops.sim.fleet import generate
from tests.devices.factory import hardware_findings
from tests.fixtures.app import make_settings, seed_users


def test_an_isolation_waits_for_approval_when_not_preapproved(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        apply_document(session, AuditContext(actor="test"), generate(hosts=40, racks=4))
    engine.dispose()
    users = seed_users(db_url)
    settings = make_settings(
        db_url,
        tmp_path / "data",
        executor="simulated",
        engine_tick_seconds=0.05,
        health_policy_enabled=True,
        health_policy_interval=0.2,
        isolation_preapproved=False,
    )
    executors = {"simulated": SimulatedExecutor(latency=0.01)}
    with TestClient(create_app(settings, executors=executors)) as client:
        viewer = users.headers("viewer")

        def device() -> dict[str, Any]:
            found: dict[str, Any] = client.get("/api/v1/devices/dn-0001", headers=viewer).json()
            return found

        hardware_findings(db_url, "dn-0001")
        deadline = time.monotonic() + 30
        while device()["change_id"] is None and time.monotonic() < deadline:
            time.sleep(0.1)
        change_id = device()["change_id"]
        assert change_id is not None
        change = client.get(f"/api/v1/changes/{change_id}", headers=viewer).json()
        assert (change["state"], change["approvals_required"]) == ("pending_approval", 1)
        time.sleep(1.0)  # policy passes come and go: nothing runs without the approval
        assert device()["state"] == "draining"
        vote = client.post(
            f"/api/v1/changes/{change_id}/approve",
            json={"comment": "disk looks dead"},
            headers=users.headers("operator"),
        )
        assert vote.status_code == 200, vote.text
        deadline = time.monotonic() + 30
        while device()["state"] != "isolated" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert device()["state"] == "isolated"
