"""Acceptance: a repaired device in the simulated fleet passes through inspection before it serves.

Healthy in-service machines are inspected first (record only), which builds their model's
baselines. A device repaired while its disk is still slow (it logs no error, only a probe shows
it) fails its verification on the disk curve and goes back to repair on the next rung; once really
fixed, its probes pass against the same baselines and it serves again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.devices.enums import Lifecycle
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import RepairConfig
from fleetops.devices.states import transition
from fleetops.models import HardwareModel, Host
from fleetops.sim.executor import SimulatedExecutor
from tests.changes.fleet import wait_for
from tests.fixtures.app import Tokens, seed_users, simulated_fleet_client

MODEL = "dn-gen3"


@pytest.fixture
def executor() -> SimulatedExecutor:
    return SimulatedExecutor(latency=0.01, seed=11)


@pytest.fixture
def gate_app(
    db_url: str, tmp_path: Path, executor: SimulatedExecutor
) -> Iterator[tuple[TestClient, Tokens]]:
    with simulated_fleet_client(
        db_url,
        tmp_path / "data",
        executor,
        hosts=24,
        racks=3,
        verification_probes="cpu,memory,disk",
        inspection_quick=True,
        budget_rack=1.0,
        budget_cluster=1.0,
    ) as client:
        yield client, seed_users(db_url)


def _model_hosts(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        names = session.scalars(
            select(Host.hostname)
            .join(HardwareModel, HardwareModel.id == Host.model_id)
            .where(HardwareModel.name == MODEL)
            .order_by(Host.hostname)
        ).all()
    engine.dispose()
    return list(names)


def _isolate_with_ticket(db_url: str, hostname: str) -> None:
    """Where the repair loop leaves a device it took out: isolated, with a repair ticket."""
    engine = make_engine(db_url)
    ctx = AuditContext(actor="test")
    with session_scope(make_session_factory(engine)) as session:
        host = session.scalar(select(Host).where(Host.hostname == hostname))
        assert host is not None
        transition(session, host, Lifecycle.ISOLATED, ctx=ctx, reason="test", override=True)
        repairs.open_ticket(
            session, ctx, host, symptoms="slow disk", evidence=[], config=RepairConfig()
        )
    engine.dispose()


def _get(client: TestClient, users: Tokens, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params, headers=users.headers("viewer"))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _wait_change(client: TestClient, users: Tokens, cid: int, *states: str) -> dict[str, Any]:
    return wait_for(
        lambda: (c := _get(client, users, f"/api/v1/changes/{cid}"))["state"] in states and c,
        timeout=120,
        what=f"change {cid} to end",
        explain=lambda: _get(client, users, f"/api/v1/changes/{cid}"),
    )


def _repaired(client: TestClient, users: Tokens, host: str) -> int:
    [ticket] = [
        t
        for t in _get(client, users, "/api/v1/repairs", host=host)["items"]
        if t["status"] == "open"
    ]
    body = {"status": "repaired", "note": "disk swapped"}
    done = client.post(
        f"/api/v1/repairs/{ticket['id']}/status", json=body, headers=users.headers("operator")
    )
    assert done.status_code == 200, done.text
    return int(ticket["id"])


def _device(client: TestClient, users: Tokens, host: str) -> dict[str, Any]:
    found: dict[str, Any] = _get(client, users, f"/api/v1/devices/{host}")
    return found


def test_a_repaired_device_passes_inspection_before_it_serves(
    gate_app: tuple[TestClient, Tokens], db_url: str, executor: SimulatedExecutor
) -> None:
    client, users = gate_app
    hosts = _model_hosts(db_url)
    assert len(hosts) >= 7
    repaired = hosts[0]

    # the model's healthy machines are measured first: that builds its baselines
    body = {
        "selector": f"model={MODEL}",
        "probes": ["cpu", "memory", "disk"],
        "quick": True,
        "record_only": True,
        "reason": "baselines for the gate",
    }
    started = client.post("/api/v1/inspections", json=body, headers=users.headers("operator"))
    assert started.status_code == 201, started.text
    change = _wait_change(client, users, started.json()["change_id"], "succeeded", "failed")
    assert change["state"] == "succeeded", change
    baselines = _get(client, users, "/api/v1/baselines", model=MODEL)
    assert {b["probe"] for b in baselines} == {"cpu", "memory", "disk"}

    # repaired, but its disk is still slow: the kernel log is clean, the disk curve is not
    executor.degraded.add(repaired)
    _isolate_with_ticket(db_url, repaired)
    first = _repaired(client, users, repaired)
    assert _device(client, users, repaired)["state"] == "verifying"
    wait_for(
        lambda: _device(client, users, repaired)["state"] == "in_repair",
        timeout=120,
        what="the verification to fail on the disk",
        explain=lambda: _device(client, users, repaired),
    )
    tickets = {t["id"]: t for t in _get(client, users, "/api/v1/repairs", host=repaired)["items"]}
    assert tickets[first]["status"] == "failed"
    [climbed] = [t for t in tickets.values() if t["status"] == "open"]
    assert climbed["action"] == "reimage"  # the next rung of the ladder
    runs = [
        r
        for r in _get(client, users, "/api/v1/inspections", host=repaired, probe="disk")["items"]
        if r["host_state"] == "verifying"  # not its record-only run while it served
    ]
    assert len(runs) == 3, "the disk was measured three times (two retries)"
    assert {r["status"] for r in runs} == {"fail"}, [(r["status"], r["reasons"]) for r in runs]
    assert any("randread 4KiB qd32:" in reason for reason in runs[0]["reasons"])
    assert "% of the model's median" in runs[0]["reasons"][0]

    # really fixed now: the same baselines pass it, and it serves again
    executor.degraded.discard(repaired)
    second = _repaired(client, users, repaired)
    wait_for(
        lambda: _device(client, users, repaired)["state"] == "in_service",
        timeout=120,
        what="the device to pass and serve",
        explain=lambda: _device(client, users, repaired),
    )
    verified = {t["id"]: t for t in _get(client, users, "/api/v1/repairs", host=repaired)["items"]}
    assert verified[second]["status"] == "verified"
    latest = {
        probe: _get(client, users, "/api/v1/inspections", host=repaired, probe=probe)["items"][0]
        for probe in ("cpu", "memory", "disk")
    }
    assert {p: r["status"] for p, r in latest.items()} == dict.fromkeys(latest, "pass")
    active = {b["probe"]: b["id"] for b in baselines}
    assert {p: r["baseline_id"] for p, r in latest.items()} == active  # not rebuilt from it
