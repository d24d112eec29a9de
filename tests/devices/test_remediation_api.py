"""Remediation through the API and the CLI: predictions posted for hosts, a dry run's proposals,
then, enabled by an admin, drains within the budget and the approval policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fleetops.sim.executor import SimulatedExecutor
from tests.dashboard.test_pages import csrf_of, log_in
from tests.devices.factory import seed
from tests.fixtures.app import Tokens, seed_users, simulated_fleet_client
from tests.fixtures.server import cli_env, cli_ok, run_cli
from tests.fixtures.waiting import wait_for

RULE = "drain-predicted-disk-failure"


def predict(client: TestClient, users: Tokens, host: str, serial: str) -> None:
    rows = [
        {"serial_number": serial, "model": "ST4000DM000", "score": 0.97, "predicted_failure": True},
        {"serial_number": f"{serial}-ok", "model": "ST4000DM000", "score": 0.01,
         "predicted_failure": False},
    ]  # fmt: skip
    answer = client.post(
        f"/api/v1/devices/{host}/signals",
        json={"source": "disk_prediction", "payload": rows},
        headers=users.headers("operator"),
    )
    assert answer.status_code == 201, answer.text
    [finding] = answer.json()["findings"]
    assert finding["details"]["signature"] == "disk_failure_predicted"


def actions(client: TestClient, users: Tokens, **query: str) -> list[dict[str, Any]]:
    page = client.get("/api/v1/policies/actions", params=query, headers=users.headers("viewer"))
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def test_a_dry_run_proposes_then_enabled_it_drains_within_the_budget(
    db_url: str, tmp_path: Path
) -> None:
    users = seed_users(db_url)
    with simulated_fleet_client(
        db_url, tmp_path / "data", SimulatedExecutor(latency=0.01), hosts=40, racks=4
    ) as client:
        for host, serial in (("dn-0001", "A1"), ("wk-0021", "B1"), ("wk-0031", "C1")):
            predict(client, users, host, serial)
        proposed = wait_for(
            lambda: [a for a in actions(client, users, mode="dry_run") if a["status"] == "held"],
            what="the dry run's record, the budget's hold included",
        )
        records = actions(client, users, mode="dry_run")
        assert sorted((a["entity"], a["status"]) for a in records) == [
            ("dn-0001", "proposed"),
            ("wk-0021", "proposed"),
            ("wk-0031", "held"),
        ]
        assert "budget: 2 action(s) an hour" in proposed[0]["reason"]
        viewer = users.headers("viewer")
        changes = client.get("/api/v1/changes", headers=viewer).json()["items"]
        assert [c for c in changes if c["title"].startswith("Isolate")] == []
        tested = client.get(f"/api/v1/policies/{RULE}/test", headers=viewer).json()
        assert [p["host"] for p in tested] == ["wk-0031"]  # the others are proposed already

        body = {"mode": "enabled"}
        refused = client.put(
            f"/api/v1/policies/{RULE}/mode", json=body, headers=users.headers("operator")
        )
        assert refused.status_code == 403
        bad = client.put(
            f"/api/v1/policies/{RULE}/mode", json={"mode": "on"}, headers=users.headers("admin")
        )
        assert bad.status_code == 422
        missing = client.put(
            "/api/v1/policies/nope/mode", json=body, headers=users.headers("admin")
        )
        assert missing.status_code == 404
        enabled = client.put(
            f"/api/v1/policies/{RULE}/mode", json=body, headers=users.headers("admin")
        )
        assert enabled.json()["mode"] == "enabled"

        def device(host: str) -> str:
            found: str = client.get(f"/api/v1/devices/{host}", headers=viewer).json()["state"]
            return found

        wait_for(
            lambda: device("dn-0001") == "isolated" and device("wk-0021") == "isolated",
            what="both drains",
            explain=lambda: actions(client, users),
        )
        done = actions(client, users, mode="enabled")
        assert sorted((a["entity"], a["status"]) for a in done) == [
            ("dn-0001", "submitted"),
            ("wk-0021", "submitted"),
            ("wk-0031", "held"),
        ]
        assert device("wk-0031") == "in_service"
        for action in done:
            if action["status"] == "submitted":
                change = client.get(f"/api/v1/changes/{action['change_id']}", headers=viewer)
                assert change.json()["requester"] == f"policy:remediation:{RULE}"
        tickets = client.get("/api/v1/repairs", headers=viewer).json()["items"]
        assert sorted((t["host"], t["action"]) for t in tickets) == [
            ("dn-0001", "replace"),
            ("wk-0021", "replace"),
        ]
        rules = {r["name"]: r for r in client.get("/api/v1/policies", headers=viewer).json()}
        rule = rules[RULE]
        assert rule["counts"]["enabled:submitted"] == 2
        assert rule["counts"]["dry_run:proposed"] == 2


def test_the_cli_lists_tests_and_switches_rules(db_url: str, tmp_path: Path) -> None:
    env = cli_env(db_url, tmp_path / "data", FLEETOPS_ENGINE_ENABLED="false")
    seed(db_url, "h001")
    listed = cli_ok(env, "policy", "list")
    assert RULE in listed
    assert "dry_run" in listed
    assert "nothing yet" in listed
    assert "no open finding calls for it now" in cli_ok(env, "policy", "test", RULE)
    assert cli_ok(env, "policy", "enable", RULE).strip() == f"{RULE}: enabled"
    assert json.loads(cli_ok(env, "policy", "list", "-o", "json"))[0]["mode"] == "enabled"
    assert cli_ok(env, "policy", "disable", RULE).strip() == f"{RULE}: disabled"
    assert cli_ok(env, "policy", "dry-run", RULE).strip() == f"{RULE}: dry_run"
    missing = run_cli(env, "policy", "enable", "nope")
    assert missing.returncode != 0
    assert "remediation rule 'nope' not found" in missing.stderr
    assert json.loads(cli_ok(env, "policy", "actions", "-o", "json"))["items"] == []


def test_the_page_shows_the_record_and_lets_only_an_admin_switch(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    seed(db_url, "h001")
    log_in(client, "viewer")
    page = client.get("/remediation")
    assert page.status_code == 200
    assert RULE in page.text
    assert "Nothing yet" in page.text
    assert f'action="/remediation/{RULE}/mode"' not in page.text  # no buttons for a viewer
    refused = client.post(
        f"/remediation/{RULE}/mode", data={"mode": "enabled", "csrf": csrf_of(page)}
    )
    assert refused.status_code == 403
    client.cookies.clear()
    log_in(client, "admin")
    page = client.get("/remediation")
    assert f'action="/remediation/{RULE}/mode"' in page.text
    switched = client.post(
        f"/remediation/{RULE}/mode",
        data={"mode": "enabled", "csrf": csrf_of(page)},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    rules = client.get("/api/v1/policies", headers=tokens.headers("viewer")).json()
    assert rules[0]["mode"] == "enabled"
    forged = client.post(f"/remediation/{RULE}/mode", data={"mode": "disabled", "csrf": "x"})
    assert forged.status_code == 403
    assert client.get("/api/v1/policies", headers=tokens.headers("viewer")).json()[0]["mode"] == (
        "enabled"
    )
