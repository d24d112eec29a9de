"""The inspection API: starting inspections, results, baselines; and the whole loop over real SSH
(record five in-service hosts, build the baseline, judge a sixth host against it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.adapters.ssh import SshConfig, SshExecutor
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.document import HardwareModelDoc, InventoryDoc
from fleetops.main import create_app
from fleetops.models import AuditRecord, ProbeRun, utcnow
from tests.changes.fleet import fleet_doc, load_fleet, wait_for
from tests.fixtures.app import Tokens, make_settings, seed_users
from tests.fixtures.sshd import SshServer
from tests.inspection.factories import IDLE

MODEL = "lab-vm"
# The test machine is shared: its load says "busy" more often than not. A lab may accept busy
# results into a baseline (the build's limits); the verdicts keep judge's own limits.
LAB_LIMITS = {"busy_load": 100.0, "busy_cpu": 1.0, "busy_steal": 1.0}
CURVES = {"disk": ["randread 4KiB qd32", "write 1MiB qd8"]}


def lab_fleet(hosts: int, **ssh: Any) -> InventoryDoc:
    """`hosts` hosts (h001...) of one hardware model, in one rack."""
    doc = fleet_doc(hosts, 1, **ssh)
    return doc.model_copy(
        update={
            "hardware_models": [HardwareModelDoc(name=MODEL)],
            "hosts": [h.model_copy(update={"model": MODEL}) for h in doc.hosts],
        }
    )


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app without its engine: changes are submitted, never run."""
    settings = make_settings(db_url, tmp_path / "data", engine_enabled=False)
    with TestClient(create_app(settings)) as client:
        yield client


def add_runs(
    db_url: str, probe: str, values: dict[str, float], *, state: str = "in_service"
) -> None:
    """Results as earlier record-only inspections leave them: {hostname: value}."""
    engine = make_engine(db_url)
    names = CURVES[probe]
    with session_scope(make_session_factory(engine)) as session:
        for hostname, value in values.items():
            session.add(
                ProbeRun(
                    hostname=hostname,
                    model=MODEL,
                    probe=probe,
                    points=dict.fromkeys(names, value),
                    units=dict.fromkeys(names, "IOPS"),
                    load=dataclasses.asdict(IDLE),
                    status="inconclusive",
                    host_state=state,
                    at=utcnow(),
                )
            )
    engine.dispose()


def test_starting_an_inspection(api: TestClient, db_url: str) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, lab_fleet(3))
    body = {"selector": "h00[1-2]", "probes": ["disk", "cpu"], "quick": True, "reason": "delivery"}
    for role in ("viewer", "developer"):
        refused = api.post("/api/v1/inspections", json=body, headers=users.headers(role))
        assert refused.status_code == 403, refused.text
    started = api.post("/api/v1/inspections", json=body, headers=users.headers("operator"))
    assert started.status_code == 201, started.text
    assert started.json() | {"change_id": 0} == {
        "change_id": 0,
        "state": "approved",
        "host_count": 2,
        "title": "Inspect hardware (disk, cpu): h00[1-2]",
    }
    cid = started.json()["change_id"]
    change = api.get(f"/api/v1/changes/{cid}", headers=users.headers("viewer")).json()
    assert (change["workflow"], change["requester"], change["approvals_required"]) == (
        "inspect-hardware",
        "operator",
        0,
    )
    assert change["params"] == {
        "probes": "disk,cpu",
        "directory": "/var/tmp",
        "quick": True,
        "record_only": False,
        "device": "",
        "iperf_server": "",
    }
    assert sorted(h["hostname"] for h in change["hosts"]) == ["h001", "h002"]
    history = api.get(
        "/api/v1/audit", params={"entity_id": str(cid)}, headers=users.headers("admin")
    )
    approved = [r for r in history.json()["items"] if r["action"] == "change.approved"]
    assert [(r["actor"], r["after"]["reason"]) for r in approved] == [
        ("policy", "standard change: hardware inspection")
    ]
    # a second inspection reuses the registered workflow
    again = api.post("/api/v1/inspections", json=body, headers=users.headers("admin"))
    assert again.status_code == 201, again.text


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        (
            {"probes": ["cpu", "gpu"]},
            422,
            "body.probes: Value error, unknown probe(s) 'gpu'; known probes: cpu, memory, disk",
        ),
        (
            {"selector": "rack=(r1"},
            422,
            "body.selector: Value error, selector error at column 6: expected a value after '='",
        ),
        ({"directory": "tmp"}, 422, "body.directory: String should match pattern"),
        ({"probes": []}, 422, "body.probes: List should have at least 1 item"),
        (
            {"probes": ["smart"]},
            422,
            "body: Value error, the smart probe reads one drive: give its device, e.g. /dev/sda",
        ),
        ({"probes": ["smart"], "device": "sda"}, 422, "body.device: String should match pattern"),
        (
            {"probes": ["network"]},
            422,
            "body: Value error, the network probe measures against an iperf3 server",
        ),
        (
            {"selector": "h9*"},
            409,
            "selector 'h9*' matches no host; a change needs targets",
        ),
    ],
)
def test_a_bad_inspection_is_refused_precisely(
    api: TestClient, db_url: str, change: dict[str, Any], status: int, detail: str
) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, lab_fleet(1))
    body = {"selector": "h001", **change}
    refused = api.post("/api/v1/inspections", json=body, headers=users.headers("operator"))
    assert refused.status_code == status, refused.text
    assert refused.json()["detail"].startswith(detail)


def test_results_and_baselines(api: TestClient, db_url: str) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, lab_fleet(6))
    viewer, operator = users.headers("viewer"), users.headers("operator")
    assert api.get("/api/v1/inspections", headers=viewer).json() == {
        "items": [],
        "total": 0,
        "limit": 100,
        "offset": 0,
    }
    missing = api.get("/api/v1/inspections/42", headers=viewer)
    assert (missing.status_code, missing.json()["detail"]) == (404, "no inspection result 42")
    build = {"model": MODEL, "probe": "disk", "reason": "first delivery"}
    assert api.post("/api/v1/baselines/build", json=build, headers=viewer).status_code == 403
    unknown = api.post("/api/v1/baselines/build", json=build | {"model": "R9"}, headers=operator)
    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("no hardware model 'R9'")
    add_runs(db_url, "disk", {"h001": 96.0, "h002": 98.0, "h003": 100.0, "h004": 104.0})
    add_runs(db_url, "disk", {"h005": 102.0}, state="verifying")  # not trusted yet
    few = api.post("/api/v1/baselines/build", json=build, headers=operator)
    assert few.status_code == 409
    assert few.json()["detail"].startswith(
        f"model {MODEL} has 4 healthy results of probe disk, 5 needed"
    )
    add_runs(db_url, "disk", {"h005": 102.0})  # now in service
    v1 = api.post("/api/v1/baselines/build", json=build, headers=operator)
    assert v1.status_code == 201, v1.text
    assert (v1.json()["version"], v1.json()["samples"], v1.json()["built_by"]) == (1, 5, "operator")
    assert v1.json()["bands"]["write 1MiB qd8"] == {
        "median": 100.0,
        "mad": 2.0,
        "low": 90.0,
        "high": 110.0,
        "unit": "IOPS",
    }
    v2 = api.post("/api/v1/baselines/build", json=build | {"reason": "again"}, headers=operator)
    assert v2.json()["version"] == 2
    active = api.get("/api/v1/baselines", params={"model": MODEL}, headers=viewer).json()
    assert [(b["version"], b["active"]) for b in active] == [(2, True)]
    history = api.get(
        "/api/v1/baselines", params={"probe": "disk", "history": True}, headers=viewer
    ).json()
    assert [(b["version"], b["active"]) for b in history] == [(2, True), (1, False)]
    assert api.get("/api/v1/baselines", params={"probe": "gpu"}, headers=viewer).status_code == 422
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        actors = session.scalars(
            select(AuditRecord.actor).where(AuditRecord.action == "baseline.build")
        ).all()
    engine.dispose()
    assert actors == ["operator", "operator"]
    results = api.get(
        "/api/v1/inspections", params={"host": "h005", "limit": 1}, headers=viewer
    ).json()
    assert results["total"] == 2
    assert results["items"][0]["host_state"] == "in_service"
    latest = api.get(
        "/api/v1/inspections", params={"latest": True, "model": MODEL}, headers=viewer
    ).json()
    assert latest["total"] == 5
    shown = api.get(f"/api/v1/inspections/{results['items'][0]['id']}", headers=viewer).json()
    assert shown["baseline"] is None  # stored without a verdict against a baseline


# --- the whole loop over real SSH ---------------------------------------------------------------


@pytest.fixture
def ssh_api(db_url: str, tmp_path: Path, sshd: SshServer) -> Iterator[TestClient]:
    settings = make_settings(
        db_url, tmp_path / "data", engine_tick_seconds=0.05, budget_rack=1.0, budget_cluster=1.0
    )
    ssh = SshExecutor(
        SshConfig(key_path=sshd.key_path, known_hosts=sshd.known_hosts, host_key_policy="strict")
    )
    with TestClient(create_app(settings, executors={"ssh": ssh})) as client:
        yield client


def _run(client: TestClient, users: Tokens, body: dict[str, Any]) -> dict[str, Any]:
    """Start an inspection and wait until its change ends; the change."""
    started = client.post("/api/v1/inspections", json=body, headers=users.headers("operator"))
    assert started.status_code == 201, started.text
    cid = started.json()["change_id"]

    def detail() -> dict[str, Any]:
        found: dict[str, Any] = client.get(
            f"/api/v1/changes/{cid}", headers=users.headers("viewer")
        ).json()
        return found

    def ended(change: dict[str, Any]) -> bool:
        # With max_failures 100 %, a change whose every host failed pauses for a retry.
        done = set(change["hosts_by_state"]) <= {"succeeded", "failed"}
        return change["state"] in ("succeeded", "failed") or (change["state"] == "paused" and done)

    return wait_for(
        lambda: ended(d := detail()) and d,
        timeout=240,
        what=f"inspection change {cid} to end",
        explain=detail,
    )


def test_inspection_over_ssh_from_records_to_verdicts(
    ssh_api: TestClient, db_url: str, sshd: SshServer, tmp_path: Path
) -> None:
    client = ssh_api
    users = seed_users(db_url)
    viewer, operator = users.headers("viewer"), users.headers("operator")
    load_fleet(
        db_url,
        lab_fleet(6, executor="ssh", address=sshd.address, port=sshd.port, user=sshd.user),
    )
    newcomer = client.post(
        "/api/v1/devices/h006/transition",
        json={"to": "verifying", "reason": "new delivery", "override": True},
        headers=operator,
    )
    assert newcomer.status_code == 200, newcomer.text
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    probes = {"probes": ["cpu", "disk"], "quick": True, "directory": str(scratch)}

    # 1. record the five in-service hosts
    recorded = _run(client, users, {"selector": "state=in_service", "record_only": True, **probes})
    assert recorded["state"] == "succeeded", recorded
    assert sorted(h["hostname"] for h in recorded["hosts"]) == [f"h00{i}" for i in range(1, 6)]
    runs = client.get(
        "/api/v1/inspections", params={"change": recorded["id"]}, headers=viewer
    ).json()["items"]
    assert sorted((r["host"], r["probe"]) for r in runs) == sorted(
        (f"h00{i}", p) for i in range(1, 6) for p in ("cpu", "disk")
    )
    for run in runs:
        assert run["status"] == "inconclusive", run  # no baseline yet
        assert (run["model"], run["host_state"], run["baseline_id"]) == (MODEL, "in_service", None)
        assert run["points"]
        assert all(v > 0 for v in run["points"].values())
    assert list(scratch.iterdir()) == []  # every scratch file removed

    # 2. build the baselines from them
    baselines = {}
    for probe in ("cpu", "disk"):
        body = {"model": MODEL, "probe": probe, "reason": "first five", **LAB_LIMITS}
        built = client.post("/api/v1/baselines/build", json=body, headers=operator)
        assert built.status_code == 201, built.text
        baselines[probe] = built.json()
        curve = {name for r in runs if r["probe"] == probe for name in r["points"]}
        assert (built.json()["version"], built.json()["samples"]) == (1, 5)
        assert set(built.json()["bands"]) == curve
        assert sorted(built.json()["source_runs"]) == sorted(
            r["id"] for r in runs if r["probe"] == probe
        )

    # 3. judge the sixth host against them
    judged = _run(client, users, {"selector": "h006", **probes})
    results = client.get("/api/v1/inspections", params={"host": "h006"}, headers=viewer).json()
    assert results["total"] >= 2
    for run in results["items"]:
        assert run["status"] in ("pass", "fail", "inconclusive"), run  # a shared machine
        assert run["host_state"] == "verifying"
        assert run["baseline_id"] == baselines[run["probe"]]["id"]
        assert set(run["ratios"]) == set(baselines[run["probe"]]["bands"])
    steps = client.get(f"/api/v1/changes/{judged['id']}/steps", headers=viewer).json()
    assert f"(baseline {MODEL}/cpu v1)" in steps[-1]["stdout"]
    assert f"(baseline {MODEL}/disk v1)" in steps[-1]["stdout"]
    latest = [r for r in results["items"] if r["change_id"] == judged["id"]][:2]
    if all(r["status"] == "pass" for r in latest):
        assert judged["state"] == "succeeded"
    else:  # measured again by the operation's retries, then failed: the only host
        assert judged["state"] == "paused"
        assert judged["status"].startswith("1 failed host(s) in stage inspect reached max_failures")
        assert results["total"] == 6
        assert judged["hosts"][0]["error"].startswith("inspect_hardware run: exit 1: verdicts: ")
    shown = client.get(f"/api/v1/inspections/{latest[0]['id']}", headers=viewer).json()
    assert shown["baseline"]["version"] == 1
    assert shown["baseline"]["bands"] == baselines[shown["probe"]]["bands"]

    # 4. a rebuild never takes the verifying host's results
    body = {"model": MODEL, "probe": "cpu", "reason": "rebuild", **LAB_LIMITS}
    rebuilt = client.post("/api/v1/baselines/build", json=body, headers=operator).json()
    assert (rebuilt["version"], rebuilt["samples"]) == (2, 5)
    assert not set(rebuilt["source_runs"]) & {r["id"] for r in results["items"]}
    history = client.get(
        "/api/v1/baselines",
        params={"model": MODEL, "probe": "cpu", "history": True},
        headers=viewer,
    ).json()
    assert [(b["version"], b["active"]) for b in history] == [(2, True), (1, False)]
