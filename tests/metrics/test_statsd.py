"""StatsD lines pushed over HTTP: counts, gauges, timers, sample rates and tags."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from tests.fixtures.app import Tokens
from tests.logs.ingest_helpers import ingest_token

TEXT = {"Content-Type": "text/plain"}


def send(client: TestClient, headers: dict[str, str], body: str | bytes) -> httpx.Response:
    return client.post("/api/v1/metrics/statsd", content=body, headers={**TEXT, **headers})


def test_lines_fold_into_windows(client: TestClient, tokens: Tokens) -> None:
    pusher = ingest_token(client, tokens)
    body = (
        "shop.orders:30|c\n"
        "shop.orders:5|c|@0.1|#dc:b\n"  # sampled 1 in 10: 50 happened
        "\n"
        "queue.depth:4|g\r\n"
        "queue.depth:-2|g\n"  # a negative value, as DogStatsD reads it
        "api.latency:120|ms|#route:/pay,canary\n"
    )
    answer = send(client, pusher, body)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 5, "windows": 4}
    viewer = tokens.headers("viewer")
    listed = {m["name"]: m for m in client.get("/api/v1/metrics", headers=viewer).json()}
    assert listed["shop.orders"] == {"name": "shop.orders", "kind": "count", "series": 2}
    assert listed["api.latency"]["kind"] == "gauge"
    orders = client.get("/api/v1/metrics/shop.orders", headers=viewer).json()
    assert sum(p["value"] for p in orders["points"]) == 8.0  # (30 + 50) per 10 s
    depth = client.get("/api/v1/metrics/queue.depth", headers=viewer).json()
    assert [p["value"] for p in depth["points"]] == [1.0]


def test_each_bad_line_is_named_and_nothing_is_stored(client: TestClient, tokens: Tokens) -> None:
    pusher = ingest_token(client, tokens)
    lines = [
        "ok.metric:1|c",  # 1
        "no-dash:1|c",  # 2
        "x:abc|g",  # 3
        "x:1|s",  # 4
        "x:+3|g",  # 5
        "x:-1|c",  # 6
        "x:1|c|@2",  # 7
        "x:1",  # 8
        "x:1|c|#a:1,a:2",  # 9
        "x:1|c|T1700000000",  # 10
        "x:1|c|#" + ",".join(f"t{i}:v" for i in range(17)),  # 11
        "x:nan|g",  # 12
        "just a line",  # 13
    ]
    answer = send(client, pusher, "\n".join(lines))
    assert answer.status_code == 422, answer.text
    errors = {e["line"]: e["detail"] for e in answer.json()["errors"]}
    assert sorted(errors) == list(range(2, 14))
    assert "name 'no-dash'" in errors[2]
    assert "value 'abc' is not a number" in errors[3]
    assert "sets (|s) are not supported" in errors[4]
    assert "gauge deltas" in errors[5]
    assert "a count cannot be negative" in errors[6]
    assert "sample rate '@2'" in errors[7]
    assert "no |TYPE" in errors[8]
    assert "tag 'a' given twice" in errors[9]
    assert "unknown section 'T1700000000'" in errors[10]
    assert errors[11].startswith("labels:")
    assert "finite" in errors[12]
    assert "expected NAME:VALUE|TYPE" in errors[13]
    assert answer.json()["detail"].startswith("12 bad line(s), nothing stored: line 2: ")
    assert client.get("/api/v1/metrics", headers=tokens.headers("viewer")).json() == []

    conflict = send(client, pusher, "jobs:1|c")
    assert conflict.status_code == 202
    assert send(client, pusher, "jobs:1|g").status_code == 409  # a metric keeps its kind


def test_the_body_must_be_text(client: TestClient, tokens: Tokens) -> None:
    pusher = ingest_token(client, tokens)
    form = client.post(
        "/api/v1/metrics/statsd",
        content="x:1|c",
        headers={**pusher, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    assert "send text/plain" in form.json()["detail"]
    assert send(client, pusher, b"x:1|c\xff").status_code == 400
    assert "NUL" in send(client, pusher, "x:1|c|#a:\x00").json()["detail"]
    empty = send(client, pusher, "\n\n")
    assert empty.status_code == 422
    assert "no StatsD lines" in empty.json()["detail"]


def test_only_an_ingest_token_pushes_lines(client: TestClient, tokens: Tokens) -> None:
    assert send(client, {}, "x:1|c").status_code == 401
    refused = send(client, tokens.headers("admin"), "x:1|c")
    assert refused.status_code == 403
    assert "create an ingest token" in refused.json()["detail"]
