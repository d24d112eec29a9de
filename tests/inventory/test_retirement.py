"""Hosts with history are retired, never deleted: the record survives an operator's DELETE."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.findings.factory import seed
from tests.fixtures.app import Tokens


def _api(client: TestClient, tokens: Tokens, method: str, path: str, **kw: Any) -> Any:
    return client.request(method, f"/api/v1{path}", headers=tokens.headers("admin"), **kw)


FLEET = """
regions: [{name: eu}]
datacenters: [{name: dc1, region: eu}]
racks: [{name: r01, datacenter: dc1}]
hosts:
  - {hostname: dn-001, address: 10.0.0.1, rack: r01}
  - {hostname: dn-002, address: 10.0.0.2, rack: r01}
"""


def _fleet(client: TestClient, tokens: Tokens) -> None:
    body = {"content": FLEET, "format": "yaml"}
    imported = _api(client, tokens, "POST", "/inventory/import", json=body)
    assert imported.status_code == 200, imported.text


def _run_a_change_on(client: TestClient, tokens: Tokens, hostname: str) -> int:
    started = _api(
        client, tokens, "POST", "/adhoc", json={"command": "uptime", "selector": hostname}
    )
    assert started.status_code == 201, started.text
    change_id: int = started.json()["change_id"]
    result = {"hostname": hostname, "exit_code": 0, "stdout": "up 3 days"}
    done = _api(client, tokens, "POST", f"/adhoc/{change_id}/results", json={"results": [result]})
    assert done.status_code == 200, done.text
    return change_id


def _hostnames(client: TestClient, tokens: Tokens, selector: str | None = None) -> list[str]:
    params = {"selector": selector} if selector else {}
    page = _api(client, tokens, "GET", "/hosts", params=params)
    assert page.status_code == 200, page.text
    return [h["hostname"] for h in page.json()["items"]]


def test_a_host_a_change_ran_on_is_refused_deletion_then_retired(
    client: TestClient, tokens: Tokens
) -> None:
    _fleet(client, tokens)
    change_id = _run_a_change_on(client, tokens, "dn-001")

    refused = _api(client, tokens, "DELETE", "/hosts/dn-001")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert (body["error"], body["references"]) == ("HostHasHistory", {"change runs": 1})
    assert "retire" in body["detail"]
    assert _api(client, tokens, "GET", "/hosts/dn-001").status_code == 200
    runs = _api(client, tokens, "GET", f"/changes/{change_id}").json()
    assert runs["state"] == "succeeded"

    # Retirement goes through the lifecycle: a serving host is drained first, or overridden.
    retire = {"to": "retired", "reason": "decommissioned", "override": True}
    moved = _api(client, tokens, "POST", "/devices/dn-001/transition", json=retire)
    assert moved.status_code == 200, moved.text

    assert _hostnames(client, tokens) == ["dn-002"]
    assert _hostnames(client, tokens, "rack=r01") == ["dn-002"]
    assert _hostnames(client, tokens, "dn-00[1-2]") == ["dn-002"]
    assert _hostnames(client, tokens, "state=retired") == ["dn-001"]
    devices = _api(client, tokens, "GET", "/devices").json()
    assert [d["hostname"] for d in devices["items"]] == ["dn-002"]
    assert devices["counts"]["retired"] == 1
    started = _api(
        client, tokens, "POST", "/adhoc", json={"command": "true", "selector": "rack=r01"}
    )
    assert [t["hostname"] for t in started.json()["targets"]] == ["dn-002"]

    history = _api(client, tokens, "GET", "/devices/dn-001/history").json()["items"]
    assert [(t["from_state"], t["to_state"]) for t in history] == [("in_service", "retired")]
    assert _api(client, tokens, "GET", "/hosts/dn-001").json()["state"] == "retired"
    assert _api(client, tokens, "GET", f"/changes/{change_id}").status_code == 200
    again = _api(client, tokens, "DELETE", "/hosts/dn-001")
    assert again.status_code == 409
    assert again.json()["references"]["lifecycle transitions"] == 1


def test_a_host_without_history_is_deleted(client: TestClient, tokens: Tokens) -> None:
    _fleet(client, tokens)
    assert _api(client, tokens, "DELETE", "/hosts/dn-002").status_code == 204
    assert _api(client, tokens, "GET", "/hosts/dn-002").status_code == 404
    audit = _api(client, tokens, "GET", "/audit", params={"action": "host.delete"}).json()
    assert [r["entity_id"] for r in audit["items"]] == ["dn-002"]


def test_a_finding_about_a_host_is_history(client: TestClient, tokens: Tokens, db_url: str) -> None:
    _fleet(client, tokens)
    seed(db_url, {"entity": "dn-002", "title": "dn-002: disk I/O errors"})
    refused = _api(client, tokens, "DELETE", "/hosts/dn-002")
    assert (refused.status_code, refused.json()["references"]) == (409, {"findings": 1})


def test_a_rack_with_members_is_refused_deletion(client: TestClient, tokens: Tokens) -> None:
    _fleet(client, tokens)
    refused = _api(client, tokens, "DELETE", "/racks/r01")
    assert refused.status_code == 409
    assert refused.json()["members"] == {"hosts": 2, "switches": 0}
    for hostname in ("dn-001", "dn-002"):
        assert _api(client, tokens, "DELETE", f"/hosts/{hostname}").status_code == 204
    assert _api(client, tokens, "DELETE", "/racks/r01").status_code == 204


def test_an_import_cannot_skip_the_lifecycle_nor_be_used_below_operator(
    client: TestClient, tokens: Tokens
) -> None:
    """The attacker's side of state in a file: a developer cannot import at all, and an operator's
    file cannot put a host in repair straight back into service (verification skipped)."""
    _fleet(client, tokens)
    moved = FLEET.replace(
        "rack: r01}\n  - {hostname: dn-002", "rack: r01, state: suspect}\n  - {hostname: dn-002", 1
    )
    body = {"content": moved, "format": "yaml"}
    denied = client.post("/api/v1/inventory/import", json=body, headers=tokens.headers("developer"))
    assert denied.status_code == 403, denied.text
    assert _api(client, tokens, "GET", "/devices/dn-001").json()["state"] == "in_service"
    for to in ("suspect", "draining", "isolated", "in_repair"):
        step = {"to": to, "reason": "disk replaced"}
        assert (
            _api(client, tokens, "POST", "/devices/dn-001/transition", json=step).status_code == 200
        )
    back = {
        "content": FLEET.replace("rack: r01}", "rack: r01, state: in_service}", 1),
        "format": "yaml",
    }
    operator = client.post(
        "/api/v1/inventory/import", json=back, headers=tokens.headers("operator")
    )
    assert operator.status_code == 400, operator.text
    assert "in_repair → in_service refused" in operator.text
    assert _api(client, tokens, "GET", "/devices/dn-001").json()["state"] == "in_repair"
