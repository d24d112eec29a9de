"""Four-eyes approval, risk classification and refusals that leave an audit trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fleetops.changes.approvals import Risk, classify
from tests.changes.fleet import RESTART_WORKFLOW, fleet_doc, load_fleet, workflow
from tests.fixtures.app import PASSWORD, Tokens


@pytest.mark.parametrize(
    ("risks", "hosts", "fleet", "expected"),
    [
        ([Risk.LOW], 3, 1000, Risk.LOW),
        ([Risk.LOW, Risk.MEDIUM], 3, 1000, Risk.MEDIUM),
        ([Risk.LOW], 120, 1000, Risk.MEDIUM),  # more than 10 % of the fleet
        ([Risk.MEDIUM], 60, 10_000, Risk.HIGH),  # more than 50 hosts
        ([Risk.LOW], 600, 1000, Risk.HIGH),  # more than half the fleet
        ([Risk.READ_ONLY], 1000, 1000, Risk.READ_ONLY),
    ],
)
def test_risk_is_the_worst_operation_raised_by_reach(
    risks: list[Risk], hosts: int, fleet: int, expected: Risk
) -> None:
    assert classify(risks, hosts=hosts, fleet=fleet) == expected


def _setup(client: TestClient, db_url: str, users: Tokens, source: str) -> None:
    load_fleet(db_url, fleet_doc(40, 4, executor="simulated"))
    response = client.post(
        "/api/v1/workflows", json={"source": source}, headers=users.headers("developer")
    )
    assert response.status_code == 201, response.text


def _submit(
    client: TestClient, users: Tokens, selector: str, as_: str = "developer", **params: object
) -> dict[str, object]:
    body = {"workflow": "restart", "selector": selector, "title": "restart nginx", "params": params}
    response = client.post("/api/v1/changes", json=body, headers=users.headers(as_))
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def _operator(client: TestClient, users: Tokens, name: str) -> dict[str, str]:
    body = {"username": name, "role": "operator", "password": PASSWORD}
    assert (
        client.post("/api/v1/users", json=body, headers=users.headers("admin")).status_code == 201
    )
    token = client.post(
        "/api/v1/tokens", json={"name": "t", "username": name}, headers=users.headers("admin")
    ).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_requester_cannot_approve_and_high_risk_needs_two_operators(
    engine_client: TestClient, db_url: str, users: Tokens, work_dir: Path
) -> None:
    client = engine_client
    _setup(client, db_url, users, RESTART_WORKFLOW)
    # An operator requests: medium op on 30 of 40 hosts → high risk.
    change = _submit(client, users, "h0[01-30]", as_="operator")
    assert (change["risk"], change["state"], change["approvals_required"]) == (
        "high",
        "pending_approval",
        2,
    )
    cid = change["id"]
    # The requester, though an operator, tries to approve: RequesterCannotApprove, audited.
    own = client.post(f"/api/v1/changes/{cid}/approve", json={}, headers=users.headers("operator"))
    assert own.status_code == 409
    assert "RequesterCannotApprove" in own.json()["detail"]
    audit = client.get(
        "/api/v1/audit", params={"action": "change.approve"}, headers=users.headers("admin")
    ).json()["items"]
    assert [(r["actor"], r["outcome"]) for r in audit] == [("operator", "refused")]
    # Developers and viewers may not approve at all.
    for role in ("developer", "viewer"):
        refused = client.post(
            f"/api/v1/changes/{cid}/approve", json={}, headers=users.headers(role)
        )
        assert refused.status_code == 403
    first = client.post(
        f"/api/v1/changes/{cid}/approve",
        json={"comment": "lgtm"},
        headers=users.headers("admin"),
    )
    assert first.status_code == 200
    assert first.json()["state"] == "pending_approval"
    again = client.post(f"/api/v1/changes/{cid}/approve", json={}, headers=users.headers("admin"))
    assert again.status_code == 409
    assert "OneVotePerApprover" in again.json()["detail"]
    second = client.post(
        f"/api/v1/changes/{cid}/approve", json={}, headers=_operator(client, users, "olga")
    )
    assert second.json()["state"] in ("approved", "scheduled", "running", "failed", "succeeded")


def test_emergency_approval_is_admin_only_needs_a_reason_and_is_flagged(
    engine_client: TestClient, db_url: str, users: Tokens
) -> None:
    client = engine_client
    _setup(client, db_url, users, RESTART_WORKFLOW)
    cid = _submit(client, users, "h001")["id"]
    op = client.post(
        f"/api/v1/changes/{cid}/approve",
        json={"emergency": True, "comment": "x" * 20},
        headers=users.headers("operator"),
    )
    assert op.status_code == 409
    short = client.post(
        f"/api/v1/changes/{cid}/approve",
        json={"emergency": True, "comment": "now"},
        headers=users.headers("admin"),
    )
    assert short.status_code == 409
    ok = client.post(
        f"/api/v1/changes/{cid}/approve",
        json={"emergency": True, "comment": "site down, rollback of bad config"},
        headers=users.headers("admin"),
    )
    assert ok.status_code == 200
    assert ok.json()["emergency"] is True
    flagged = client.get(
        "/api/v1/audit", params={"outcome": "emergency"}, headers=users.headers("admin")
    ).json()["items"]
    assert [r["entity_id"] for r in flagged] == [str(cid)]


def test_bad_submissions_name_the_problem(
    engine_client: TestClient, db_url: str, users: Tokens
) -> None:
    client = engine_client
    _setup(client, db_url, users, workflow())
    dev = users.headers("developer")
    base = {"workflow": "append", "selector": "h001", "title": "t", "params": {"dir": "/tmp"}}
    empty = client.post("/api/v1/changes", json=base | {"selector": "rack=nowhere"}, headers=dev)
    assert empty.status_code == 409
    assert empty.json()["error"] == "EmptyTargetSet"
    unknown_key = client.post("/api/v1/changes", json=base | {"selector": "rak=r1"}, headers=dev)
    assert unknown_key.status_code == 400
    missing = client.post("/api/v1/changes", json=base | {"params": {}}, headers=dev)
    assert missing.status_code == 422
    assert any(i["path"] == "params.dir" for i in missing.json()["issues"])
    typed = client.post(
        "/api/v1/changes", json=base | {"params": {"dir": "/tmp", "hold": "x"}}, headers=dev
    )
    assert typed.status_code == 422
    assert any(i["path"] == "params.hold" for i in typed.json()["issues"])
    viewer = client.post("/api/v1/changes", json=base, headers=users.headers("viewer"))
    assert viewer.status_code == 403
