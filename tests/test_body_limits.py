"""The API bounds a JSON body before it reads it whole: a 413 that names the setting, before any
parsing or authentication, whether the body declares its length or arrives in chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fleetops.main import create_app
from tests.fixtures.app import make_settings, seed_users

LIMIT = 64 * 1024


@pytest.fixture
def small(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        db_url, tmp_path / "data", api_max_json_bytes=LIMIT, metrics_max_body_bytes=2048
    )
    with TestClient(create_app(settings)) as client:
        yield client


def change(title: str) -> bytes:
    body = {"workflow": "os-patch", "selector": "all", "params": {}, "title": title}
    return json.dumps(body).encode()


JSON = {"Content-Type": "application/json"}


def test_a_json_body_over_the_limit_is_refused_before_authentication(small: TestClient) -> None:
    big = change("x" * LIMIT)
    declared = small.post("/api/v1/changes", content=big, headers=JSON)
    assert declared.status_code == 413
    assert "longer than 65536 bytes (api_max_json_bytes)" in declared.json()["detail"]
    chunks = (big[i : i + 4096] for i in range(0, len(big), 4096))  # no Content-Length
    streamed = small.post("/api/v1/changes", content=chunks, headers=JSON)
    assert streamed.status_code == 413
    assert small.post("/api/v1/changes", content=change("ok"), headers=JSON).status_code == 401


def test_a_body_within_the_limit_is_read_as_before(small: TestClient, db_url: str) -> None:
    tokens = seed_users(db_url)
    answer = small.post(
        "/api/v1/changes",
        content=change("y" * 300),
        headers={**JSON, **tokens.headers("developer")},
    )
    assert answer.status_code == 422  # read and validated: the title is too long
    assert "title" in answer.json()["detail"]


def test_a_metrics_push_has_its_own_limit(small: TestClient) -> None:
    points = [{"name": "shop.tx", "value": 1.0, "kind": "count"}] * 100
    refused = small.post("/api/v1/metrics", content=json.dumps({"points": points}), headers=JSON)
    assert refused.status_code == 413
    assert "(metrics_max_body_bytes)" in refused.json()["detail"]
    within = small.post("/api/v1/metrics", content=json.dumps({"points": points[:5]}), headers=JSON)
    assert within.status_code == 401  # read on: no ingest token
