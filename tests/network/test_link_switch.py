"""Switching a slow link: the suspects of a slow rack pair, the change that drains a ToR's
uplink, and the simulated switches answering it (the demo's story, through the real engine)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.inventory.document import HostDoc, InventoryDoc
from fleetops.models import LinkWindow
from fleetops.sim.executor import SimulatedExecutor
from fleetops.sim.faults import UPLINK, Fault, tor_of
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload
from tests.changes.fleet import approve, wait_for
from tests.fixtures.app import Tokens, seed_users, simulated_fleet_client

HOSTS, RACKS = 40, 4
FLEET = generate(hosts=HOSTS, racks=RACKS)
TORS = tor_of(FLEET)  # rack → ToR


def add(db_url: str, doc: InventoryDoc) -> None:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        apply_document(session, AuditContext(actor="test"), doc)
    engine.dispose()


def management_host(db_url: str, tool: str = "sim", name: str = "netops-01") -> None:
    add(db_url, InventoryDoc(hosts=[HostDoc(hostname=name, labels={"network_cli": tool})]))


def slow_rack(db_url: str, culprit: str) -> None:
    """Five minutes of rollups in which every pair with `culprit` is slow and the rest fast,
    as a congested uplink of `culprit`'s ToR writes them."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    racks = sorted(TORS)
    rows = []
    for tick in range(1, 25):
        start = now - timedelta(seconds=10 * tick)
        for src in racks:
            for dst in racks:
                if src == dst:
                    continue
                slow = 18 if culprit in (src, dst) else 0
                rows.append(
                    LinkWindow(start=start, seconds=10, src_rack=src, dst_rack=dst, transfers=20,
                               bytes=20 << 27, slow=slow, p50_ms=900.0 if slow else 90.0,
                               p95_ms=1500.0 if slow else 140.0, mbps_p50=100.0)
                )  # fmt: skip
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        session.add_all(rows)
    engine.dispose()


@pytest.fixture
def workload() -> Workload:
    return Workload(FLEET, seed=3, start=datetime.now(UTC), load=0.0)


@pytest.fixture
def client(db_url: str, tmp_path: Path, workload: Workload) -> Iterator[TestClient]:
    executor = SimulatedExecutor(seed=1)
    executor.network = workload.switch_link
    with simulated_fleet_client(db_url, tmp_path / "data", executor, hosts=HOSTS, racks=RACKS) as c:
        yield c


@pytest.fixture
def users(client: TestClient, db_url: str) -> Tokens:
    return seed_users(db_url)


def propose(client: TestClient, users: Tokens, role: str = "developer", **body: Any) -> Any:
    return client.post("/api/v1/network/link-switches", json=body, headers=users.headers(role))


def test_the_rack_slow_with_every_peer_is_the_suspect_and_its_tor_the_switch(
    client: TestClient, users: Tokens, db_url: str
) -> None:
    racks = sorted(TORS)
    culprit, other = racks[2], racks[0]
    slow_rack(db_url, culprit)
    management_host(db_url)
    for src, dst in ((culprit, other), (other, culprit)):
        found = client.get(
            "/api/v1/network/suspects",
            params={"src": src, "dst": dst},
            headers=users.headers("viewer"),
        )
        assert found.status_code == 200, found.text
        first, second = found.json()["suspects"]
        assert (first["rack"], first["switch"]) == (culprit, TORS[culprit])
        assert first["slow_peers"] == first["peers"] == RACKS - 1
        assert second["rack"] == other
        assert second["slow_peers"] == 1
        assert found.json()["via"] == ["netops-01"]


def test_a_link_switch_is_a_change_awaiting_approval_that_shows_its_switch_lines(
    client: TestClient, users: Tokens, db_url: str
) -> None:
    management_host(db_url, tool="eos", name="netops-eos")
    tor = TORS[sorted(TORS)[1]]
    answer = propose(client, users, switch=tor, interface="Ethernet49/1", reason="r002 slow")
    assert answer.status_code == 201, answer.text
    change = answer.json()
    assert change["workflow"] == "shift-link"
    assert change["state"] == "pending_approval"
    assert change["selector"] == "host=netops-eos"
    assert change["host_count"] == 1
    assert change["risk"] == "high"
    assert change["approvals_required"] >= 1
    assert change["title"] == f"Shift traffic off {tor} Ethernet49/1"
    preview = client.get(
        f"/api/v1/changes/{change['id']}/preview", headers=users.headers("operator")
    )
    assert preview.status_code == 200, preview.text
    (step,) = preview.json()
    assert step["hostname"] == "netops-eos"
    assert f"ssh -o BatchMode=yes {tor} <<'EOF'" in step["runs"]
    assert "interface Ethernet49/1\nshutdown\n" in step["runs"]  # what the approver reads


def test_a_link_switch_is_refused_with_what_to_do(
    client: TestClient, users: Tokens, db_url: str
) -> None:
    tor = TORS[sorted(TORS)[0]]
    nobody = propose(client, users, switch=tor)
    assert nobody.status_code == 409
    assert "label the host that reaches your switches with network_cli" in nobody.json()["detail"]
    management_host(db_url)
    unknown = propose(client, users, switch="no-such-tor")
    assert unknown.status_code == 404
    assert "not in the inventory" in unknown.json()["detail"]
    injected = propose(client, users, switch=tor, interface="uplink; reboot")
    assert injected.status_code == 422
    not_mgmt = propose(client, users, switch=tor, via=FLEET.hosts[0].hostname)
    assert not_mgmt.status_code == 409
    assert "netops-01" in not_mgmt.json()["detail"]
    assert propose(client, users, role="viewer", switch=tor).status_code == 403
    assert client.post("/api/v1/network/link-switches", json={"switch": tor}).status_code == 401
    listed = client.get("/api/v1/changes", headers=users.headers("viewer")).json()
    assert not [c for c in listed["items"] if c["workflow"] == "shift-link"]  # nothing left


def test_an_approved_switch_drains_the_uplink_and_a_restore_puts_it_back(
    client: TestClient, users: Tokens, db_url: str, workload: Workload
) -> None:
    management_host(db_url)
    rack = sorted(TORS)[3]
    tor = TORS[rack]
    workload.inject(Fault("congested_link", tor + UPLINK, datetime.now(UTC), None, 1.0))
    workload.advance(datetime.now(UTC) + timedelta(seconds=1))
    assert workload.switch_link("is-drained", tor, "uplink")[0] == 1

    def run(action: str) -> dict[str, Any]:
        change = propose(client, users, switch=tor, action=action)
        assert change.status_code == 201, change.text
        approve(client.post, users, change.json())
        url = f"/api/v1/changes/{change.json()['id']}"
        return wait_for(
            lambda: (
                (c := client.get(url, headers=users.headers("viewer")).json())["state"]
                in ("succeeded", "failed")
                and c
            ),
            what=f"the {action} change to finish",
        )

    drained = run("drain")
    assert drained["state"] == "succeeded", drained
    assert workload.switch_link("is-drained", tor, "uplink")[0] == 0
    assert rack in workload._effects.drained  # the congested uplink no longer slows transfers
    restored = run("restore")
    assert restored["state"] == "succeeded"
    assert restored["title"].startswith("Restore traffic to")
    assert workload.switch_link("is-forwarding", tor, "uplink")[0] == 0
