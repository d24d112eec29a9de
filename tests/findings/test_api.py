"""The findings API through HTTP on both databases: roles, filters, transitions, error bodies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.findings.factory import T0, seed
from tests.fixtures.app import Tokens


@pytest.fixture
def ids(client: TestClient, tokens: Tokens, db_url: str) -> list[int]:
    """A critical disk finding on h001, an info link flap, a warning on h003 an hour later."""
    return seed(
        db_url,
        {"severity": "critical", "score": 9.5},
        {"kind": "link_flap", "entity_type": "link", "entity": "sw1:eth1", "severity": "info"},
        {"entity": "h003", "now": T0 + timedelta(hours=1)},
    )


def test_viewers_list_filter_and_read(client: TestClient, tokens: Tokens, ids: list[int]) -> None:
    viewer = tokens.headers("viewer")
    page = client.get("/api/v1/findings", headers=viewer)
    assert page.status_code == 200
    body = page.json()
    assert [f["id"] for f in body["items"]] == ids[::-1]  # newest first
    assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)

    def listed(**params: object) -> list[int]:
        response = client.get("/api/v1/findings", params=params, headers=viewer)
        assert response.status_code == 200, response.text
        return [f["id"] for f in response.json()["items"]]

    assert listed(kind="link_flap") == [ids[1]]
    assert listed(entity="h003") == [ids[2]]
    assert listed(severity="critical") == [ids[0]]
    assert listed(status="open") == ids[::-1]
    assert listed(since=(T0 + timedelta(minutes=30)).isoformat()) == [ids[2]]
    assert listed(limit=1, offset=1) == [ids[1]]

    one = client.get(f"/api/v1/findings/{ids[0]}", headers=viewer).json()
    assert (one["severity"], one["score"], one["status"], one["occurrences"]) == (
        "critical",
        9.5,
        "open",
        1,
    )
    assert one["evidence"][0]["type"] == "lines"
    assert one["dedup_key"] == "disk_slow:host:h001"
    counts = client.get("/api/v1/findings/counts", headers=viewer).json()
    assert counts == {
        "by_status": {"open": 3, "acknowledged": 0, "resolved": 0},
        "live_by_severity": {"info": 1, "warning": 1, "critical": 1},
        "live": 3,
    }


def test_operators_ack_and_resolve(client: TestClient, tokens: Tokens, ids: list[int]) -> None:
    operator = tokens.headers("operator")
    acked = client.post(f"/api/v1/findings/{ids[0]}/ack", headers=operator)
    assert acked.status_code == 200, acked.text
    assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", "operator")
    resolved = client.post(
        f"/api/v1/findings/{ids[0]}/resolve", json={"reason": "disk replaced"}, headers=operator
    )
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["resolution"]) == (
        "resolved",
        "disk replaced",
    )
    with_reason = client.post(
        f"/api/v1/findings/{ids[1]}/ack", json={"reason": "on it"}, headers=operator
    )
    assert with_reason.status_code == 200
    trail = client.get(
        "/api/v1/audit",
        params={"entity_type": "finding", "actor": "operator"},
        headers=tokens.headers("viewer"),
    ).json()["items"]
    assert [(r["action"], r["entity_id"], r["after"]["reason"]) for r in trail] == [
        ("finding.acknowledged", str(ids[1]), "on it"),
        ("finding.resolved", str(ids[0]), "disk replaced"),
        ("finding.acknowledged", str(ids[0]), ""),
    ]


def test_roles_viewer_403_anonymous_401(client: TestClient, tokens: Tokens, ids: list[int]) -> None:
    for path, body in ((f"{ids[0]}/ack", {}), (f"{ids[0]}/resolve", {"reason": "x"})):
        refused = client.post(
            f"/api/v1/findings/{path}", json=body, headers=tokens.headers("viewer")
        )
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "PermissionDenied",
            "detail": "this action needs the operator role; you act as viewer",
        }
        anonymous = client.post(f"/api/v1/findings/{path}", json=body)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "NotAuthenticated"
    assert client.get("/api/v1/findings").status_code == 401
    assert client.get(f"/api/v1/findings/{ids[0]}").status_code == 401
    shown = client.get(f"/api/v1/findings/{ids[0]}", headers=tokens.headers("operator"))
    assert shown.json()["status"] == "open"  # nothing changed


def test_404_409_422_say_what_is_wrong(client: TestClient, tokens: Tokens, ids: list[int]) -> None:
    operator = tokens.headers("operator")
    missing = client.get("/api/v1/findings/999", headers=operator)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "FindingNotFound", "detail": "finding 999 not found"},
    )
    assert client.post("/api/v1/findings/999/ack", headers=operator).status_code == 404

    for body in ({}, {"reason": ""}, {"reason": "   "}):
        invalid = client.post(f"/api/v1/findings/{ids[0]}/resolve", json=body, headers=operator)
        assert invalid.status_code == 422, body
        assert invalid.json()["error"] == "ValidationError"
        assert invalid.json()["detail"].startswith("body.reason: ")
    bad_filter = client.get("/api/v1/findings", params={"status": "closed"}, headers=operator)
    assert bad_filter.status_code == 422
    assert "query.status" in bad_filter.json()["detail"]
    naive = client.get(
        "/api/v1/findings", params={"since": "2026-11-26T12:00:00"}, headers=operator
    )
    assert naive.status_code == 422
    assert "timezone" in naive.json()["detail"]

    client.post(f"/api/v1/findings/{ids[0]}/resolve", json={"reason": "done"}, headers=operator)
    late = client.post(f"/api/v1/findings/{ids[0]}/ack", headers=operator)
    assert late.status_code == 409
    assert late.json()["error"] == "TransitionRefused"
    assert late.json()["detail"].startswith(
        f"ResolvedIsFinal: finding {ids[0]} was resolved by operator at "
    )
    client.post(f"/api/v1/findings/{ids[1]}/ack", headers=operator)
    twice = client.post(f"/api/v1/findings/{ids[1]}/ack", headers=operator)
    assert (twice.status_code, twice.json()["detail"]) == (
        409,
        f"AlreadyThere: finding {ids[1]} is already acknowledged by operator",
    )


def test_the_routes_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/findings",
        "/api/v1/findings/counts",
        "/api/v1/findings/{finding_id}",
        "/api/v1/findings/{finding_id}/ack",
        "/api/v1/findings/{finding_id}/resolve",
    } <= set(paths)
    assert "409" in paths["/api/v1/findings/{finding_id}/ack"]["post"]["responses"]
