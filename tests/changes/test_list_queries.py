"""Listing changes costs the same number of queries for two changes as for twenty (no N+1)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from fleetops.main import create_app
from fleetops.sim.executor import SimulatedExecutor
from tests.changes.fleet import approve, fleet_doc, load_fleet
from tests.fixtures.app import Tokens, make_settings, seed_users
from tests.fixtures.queries import counted

NOOP = """name: noop
version: 1
description: nothing
stages:
  - name: main
    steps:
      - operation: shell
        params: {command: "true"}
"""


def submit(client: TestClient, users: Tokens, n: int) -> None:
    for i in range(n):
        body = {"workflow": "noop", "title": f"t{i}", "selector": f"h00{1 + i % 3}"}
        answer = client.post("/api/v1/changes", json=body, headers=users.headers("developer"))
        assert answer.status_code == 201, answer.text
        approve(client.post, users, answer.json())


def test_the_change_list_does_not_query_per_change(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path / "data", engine_enabled=False)
    app = create_app(settings, executors={"simulated": SimulatedExecutor()})
    with TestClient(app) as client:
        load_fleet(db_url, fleet_doc(3, 1, executor="simulated"))
        users = seed_users(db_url)
        registered = client.post(
            "/api/v1/workflows", json={"source": NOOP}, headers=users.headers("developer")
        )
        assert registered.status_code == 201, registered.text
        client.get("/api/v1/changes", headers=users.headers("viewer"))  # the token's first use
        costs = []
        for n in (2, 18):
            submit(client, users, n)
            for path in ("/api/v1/changes", "/changes"):
                with counted(app) as statements:
                    listed = client.get(path, headers=users.headers("viewer"))
                assert listed.status_code == 200, listed.text
                costs.append((path, len(statements)))
        assert client.get("/api/v1/changes", headers=users.headers("viewer")).json()["total"] == 20
    (api_few, page_few, api_many, page_many) = (c for _, c in costs)
    assert api_many == api_few, costs
    assert page_many == page_few, costs
