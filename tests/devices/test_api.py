"""`/api/v1/devices` on the real app: roles, status codes, history and audit."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.devices.factory import seed
from tests.fixtures.app import Tokens

URL = "/api/v1/devices"


def move(
    client: TestClient, tokens: Tokens, host: str, body: dict[str, object], role: str = "operator"
):  # type: ignore[no-untyped-def]
    return client.post(f"{URL}/{host}/transition", json=body, headers=tokens.headers(role))


def test_loop_history_audit_and_counts(client: TestClient, tokens: Tokens, db_url: str) -> None:
    [finding] = seed(db_url, "h001", "h002", findings=1)
    op = tokens.headers("operator")
    first = move(
        client, tokens, "h001", {"to": "suspect", "reason": "disk errors", "evidence": [finding]}
    )
    assert first.status_code == 200, first.text
    assert first.json() | {"id": 0, "at": ""} == {
        "id": 0,
        "at": "",
        "from_state": "in_service",
        "to_state": "suspect",
        "actor": "operator",
        "reason": "disk errors",
        "evidence": [finding],
        "override": False,
    }
    for to in ["draining", "isolated", "in_repair", "verifying", "in_service"]:
        assert move(client, tokens, "h001", {"to": to, "reason": f"now {to}"}).status_code == 200
    page = client.get(URL, params={"state": "in_service"}, headers=tokens.headers("viewer")).json()
    assert [d["hostname"] for d in page["items"]] == ["h001", "h002"]
    assert page["counts"]["in_service"] == 2
    detail = client.get(f"{URL}/h001", headers=tokens.headers("viewer")).json()
    assert (detail["state"], detail["updated_by"], detail["next_states"]) == (
        "in_service",
        "operator",
        ["suspect"],
    )
    assert [t["to_state"] for t in detail["recent"]][:2] == ["in_service", "verifying"]
    history = client.get(f"{URL}/h001/history", params={"limit": 2}, headers=op).json()
    assert history["total"] == 6
    assert [t["to_state"] for t in history["items"]] == ["in_service", "verifying"]
    audit = client.get(
        "/api/v1/audit",
        params={"action": "device.*", "limit": 100},
        headers=tokens.headers("admin"),
    ).json()["items"]
    assert sorted(a["action"] for a in audit) == sorted(
        f"device.{s}"
        for s in ["suspect", "draining", "isolated", "in_repair", "verifying", "in_service"]
    )
    assert {a["actor"] for a in audit} == {"operator"}


def test_refusals_name_the_rule_and_next_states(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    seed(db_url, "h001")
    bad = move(client, tokens, "h001", {"to": "isolated", "reason": "why not"})
    assert bad.status_code == 409
    assert bad.json() == {
        "error": "TransitionRefused",
        "detail": "AllowedStep: h001 is in_service; it cannot become isolated "
        "(next: suspect; an operator override may jump)",
        "rule": "AllowedStep",
        "allowed": ["suspect"],
    }
    blank = move(client, tokens, "h001", {"to": "isolated", "reason": " ", "override": True})
    assert (blank.status_code, blank.json()["rule"]) == (409, "ReasonRequired")
    missing = move(client, tokens, "h001", {"to": "suspect", "reason": "r", "evidence": [4242]})
    assert (missing.status_code, missing.json()["rule"]) == (409, "EvidenceExists")
    jump = move(client, tokens, "h001", {"to": "isolated", "reason": "PSU smoke", "override": True})
    assert jump.json()["override"] is True
    move(client, tokens, "h001", {"to": "retired", "reason": "scrap", "override": True})
    final = move(client, tokens, "h001", {"to": "verifying", "reason": "r", "override": True})
    assert (final.status_code, final.json()["rule"], final.json()["allowed"]) == (
        409,
        "RetiredIsFinal",
        [],
    )
    assert client.get(f"{URL}/h001/history", headers=tokens.headers("viewer")).json()["total"] == 2


def test_status_codes(client: TestClient, tokens: Tokens, db_url: str) -> None:
    seed(db_url, "h001")
    body = {"to": "isolated", "reason": "r", "override": True}
    assert client.post(f"{URL}/h001/transition", json=body).status_code == 401
    viewer = move(client, tokens, "h001", body, role="viewer")
    assert (viewer.status_code, viewer.json()["error"]) == (403, "PermissionDenied")
    assert move(client, tokens, "nope", body).status_code == 404
    assert client.get(f"{URL}/nope", headers=tokens.headers("viewer")).status_code == 404
    assert client.get(f"{URL}/nope/history", headers=tokens.headers("viewer")).status_code == 404
    for wrong in [
        {"to": "broken", "reason": "r"},
        {"to": "suspect"},
        {"to": "suspect", "reason": "r", "evidence": [0]},
    ]:
        assert move(client, tokens, "h001", wrong).status_code == 422, wrong
    assert (
        client.get(URL, params={"selector": "rack=="}, headers=tokens.headers("viewer")).status_code
        == 400
    )
    assert (
        client.get(f"{URL}/h001", headers=tokens.headers("viewer")).json()["state"] == "in_service"
    )
