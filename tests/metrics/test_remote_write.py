"""Prometheus remote write into the metric windows: from a real Prometheus, and bad bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cramjam
import httpx
import pytest
from fastapi.testclient import TestClient

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.logs import service as logs_service
from fleetops.metrics.ingest.remote_write import WireSeries, encode
from fleetops.metrics.service import WINDOW_SECONDS
from tests.fixtures.app import Tokens, seed_users
from tests.fixtures.prometheus import running_prometheus
from tests.fixtures.server import cli_env, running_server
from tests.fixtures.waiting import wait_for
from tests.logs.ingest_helpers import ingest_token

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def ms(seconds_ago: float) -> int:
    return int((datetime.now(UTC) - timedelta(seconds=seconds_ago)).timestamp() * 1000)


def window_start_ms(seconds_ago: float) -> int:
    """The start of the window holding that moment: samples a second or two after it share it."""
    step = WINDOW_SECONDS * 1000
    return ms(seconds_ago) // step * step


def send(client: TestClient, headers: dict[str, str], body: bytes) -> httpx.Response:
    return client.post("/api/v1/metrics/write", content=body, headers={**HEADERS, **headers})


def create_ingest_token(db_url: str) -> str:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        _, plaintext = logs_service.create_ingest_token(
            session, AuditContext(actor="test"), name="prometheus"
        )
    engine.dispose()
    return plaintext


def test_a_real_prometheus_writes_into_the_windows(db_url: str, tmp_path: Path) -> None:
    env = cli_env(
        db_url, tmp_path / "data", FLEETOPS_ENGINE_ENABLED="false", FLEETOPS_INGEST_ENABLED="false"
    )
    with running_server(env) as url:
        token = create_ingest_token(db_url)
        viewer = seed_users(db_url).headers("viewer")
        target = (f"{url}/api/v1/metrics/write", token)
        with running_prometheus(tmp_path / "prometheus", remote_write=target) as prometheus:

            def metrics() -> dict[str, dict[str, object]]:
                listed = httpx.get(f"{url}/api/v1/metrics", headers=viewer).json()
                return {m["name"]: m for m in listed}

            names = wait_for(
                lambda: "prometheus_http_requests_total" in metrics() and metrics(),
                timeout=45,
                what="a counter's increase written by Prometheus",
                explain=prometheus.output,
            )
        build = httpx.get(f"{url}/api/v1/metrics/prometheus_build_info", headers=viewer).json()
        requests = httpx.get(
            f"{url}/api/v1/metrics/prometheus_http_requests_total", headers=viewer
        ).json()
    assert names["prometheus_build_info"]["kind"] == "gauge"
    assert {p["value"] for p in build["points"]} == {1.0}
    assert names["up"]["kind"] == "gauge"
    assert names["prometheus_http_requests_total"]["kind"] == "count"  # a rate, not the total
    assert names["prometheus_http_requests_total"]["series"] >= 1  # by handler and code
    assert all(0 <= p["value"] < 1000 for p in requests["points"])


def test_series_are_stored_by_name_and_counters_as_rates(
    client: TestClient, tokens: Tokens
) -> None:
    pusher = ingest_token(client, tokens)
    depth_at = window_start_ms(30)  # two samples in one window, whatever the clock says
    first = encode(
        [
            WireSeries(
                {"__name__": "queue_depth", "dc": "a"},
                [(depth_at + 1000, 4.0), (depth_at + 2000, 8.0)],
            ),
            WireSeries({"__name__": "jobs_total", "dc": "a"}, [(ms(25), 100.0)]),
            WireSeries({"__name__": "1bad"}, [(ms(20), 1.0)]),
            WireSeries({"__name__": "stale", "dc": "a"}, [(ms(20), float("nan"))]),
            WireSeries({"__name__": "old"}, [(ms(10 * 86400), 1.0)]),
        ]
    )
    answer = send(client, pusher, first)
    assert answer.status_code == 204, answer.text
    assert answer.headers["X-Fleetops-Stored"] == "2"  # the counter's first sample: a baseline
    assert answer.headers["X-Fleetops-Skipped"] == "3"
    reasons = answer.headers["X-Fleetops-Skipped-Reasons"]
    assert "a name fleetops cannot store (e.g. 1bad): 1" in reasons
    assert "an empty summary) (e.g. stale): 1" in reasons
    assert "more than 8 days old or 5 minutes ahead (e.g. old): 1" in reasons

    # the next request carries the counter on: 100 -> 130, then a restart (reset) to 20
    second = encode([WireSeries({"__name__": "jobs_total", "dc": "a"}, [(ms(5), 130.0)])])
    assert send(client, pusher, second).headers["X-Fleetops-Stored"] == "1"
    reset = encode([WireSeries({"__name__": "jobs_total", "dc": "a"}, [(ms(4), 20.0)])])
    assert send(client, pusher, reset).headers["X-Fleetops-Stored"] == "1"
    resent = send(client, pusher, reset)  # a retry of a batch already taken
    assert resent.headers["X-Fleetops-Skipped"] == "1"

    viewer = tokens.headers("viewer")
    jobs = client.get("/api/v1/metrics/jobs_total", headers=viewer).json()
    assert jobs["kind"] == "count"
    assert sum(p["value"] for p in jobs["points"]) == pytest.approx((30 + 20) / 10)
    depth = client.get("/api/v1/metrics/queue_depth", headers=viewer).json()
    assert [p["value"] for p in depth["points"]] == [6.0]

    # a name stored as a gauge stays one: a counter-looking series of it is skipped, counted
    client.post(
        "/api/v1/metrics", json={"points": [{"name": "odd_total", "value": 1}]}, headers=pusher
    )
    clash = [(ms(3), 1.0), (ms(2), 2.0)]
    answer = send(client, pusher, encode([WireSeries({"__name__": "odd_total"}, clash)]))
    assert answer.status_code == 204
    assert answer.headers["X-Fleetops-Skipped"] == "1"
    assert (
        "stored as the other kind (e.g. odd_total): 1"
        in answer.headers["X-Fleetops-Skipped-Reasons"]
    )


def test_bad_bodies_are_refused_and_nothing_is_stored(client: TestClient, tokens: Tokens) -> None:
    pusher = ingest_token(client, tokens)
    good = encode([WireSeries({"__name__": "x"}, [(ms(1), 1.0)])])
    not_protobuf = bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff"))
    cases = [
        (b"not snappy at all", {}, 400, "the body is not valid snappy"),
        (not_protobuf, {}, 400, "the body is not a protobuf WriteRequest"),
        (good, {"Content-Encoding": "gzip"}, 415, "remote write bodies are snappy"),
        (good, {"Content-Type": "application/json"}, 415, "send application/x-protobuf"),
        (good, {"X-Prometheus-Remote-Write-Version": "2.0.0"}, 415, "takes 1.0"),
    ]
    for body, headers, status, said in cases:
        answer = send(client, {**pusher, **headers}, body)
        assert answer.status_code == status, answer.text
        assert said in answer.json()["detail"]
    assert client.get("/api/v1/metrics", headers=tokens.headers("viewer")).json() == []


def test_size_limits_apply_before_decompressing(
    db_url: str, tmp_path: Path, tokens: Tokens
) -> None:
    from fleetops.main import create_app
    from tests.fixtures.app import make_settings

    settings = make_settings(
        db_url, tmp_path / "small", metrics_max_body_bytes=2048, metrics_max_decoded_bytes=4096
    )
    with TestClient(create_app(settings)) as client:
        pusher = ingest_token(client, tokens)
        big = bytes(cramjam.snappy.compress_raw(b"\x00" * 5000))  # small, but declares 5,000
        assert len(big) < 2048
        answer = send(client, pusher, big)
        assert answer.status_code == 413
        assert "decompresses to 5000 bytes; the limit is 4096" in answer.json()["detail"]
        # a declared length far beyond anything: refused without allocating it
        huge = b"\xff\xff\xff\xff\x0f" + b"\x00" * 10
        assert send(client, pusher, huge).status_code == 413
        answer = send(client, pusher, b"\x00" * 3000)
        assert answer.status_code == 413
        assert "the limit is 2048 (metrics_max_body_bytes)" in answer.json()["detail"]


def test_only_an_ingest_token_writes(client: TestClient, tokens: Tokens) -> None:
    body = encode([WireSeries({"__name__": "x"}, [(ms(1), 1.0)])])
    assert send(client, {}, body).status_code == 401
    assert send(client, {}, b"garbage").status_code == 401  # before the body is looked at
    refused = send(client, tokens.headers("admin"), body)
    assert refused.status_code == 403
    assert "create an ingest token" in refused.json()["detail"]
