"""The Prometheus HTTP API client against a real Prometheus, and its errors."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from fleetops.adapters.prometheus import PrometheusClient
from fleetops.metrics.exceptions import (
    PrometheusAnswerError,
    PrometheusUnreachable,
    UnexpectedResult,
)
from fleetops.metrics.schemas import QueriedSeries
from tests.fixtures.prometheus import Prometheus, prometheus  # noqa: F401  (fixture)
from tests.fixtures.server import free_port
from tests.fixtures.waiting import wait_for

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def ask(url: str, promql: str, *, span: float = 0) -> list[QueriedSeries]:
    """An instant query, or with `span` a range query over the last `span` seconds."""

    async def go() -> list[QueriedSeries]:
        client = PrometheusClient(url, timeout=5)
        try:
            if not span:
                return await client.query(promql)
            end = datetime.now(UTC)
            start = end - timedelta(seconds=span)
            return await client.query_range(promql, start=start, end=end, step=1)
        finally:
            await client.aclose()

    return run(go())


def test_instant_and_range_queries(prometheus: Prometheus) -> None:  # noqa: F811
    up = wait_for(lambda: ask(prometheus.url, "up"), timeout=20, what="the first scrape")
    assert up[0].labels["job"] == "prometheus"
    assert up[0].samples[0][1] == 1.0

    [build] = ask(prometheus.url, "prometheus_build_info")
    assert build.labels["__name__"] == "prometheus_build_info"
    assert build.labels["version"].startswith("2.")
    assert [value for _, value in build.samples] == [1.0]
    assert abs(build.samples[0][0] - datetime.now(UTC)) < timedelta(seconds=30)

    rate = "rate(prometheus_http_requests_total[1m])"
    series = wait_for(
        lambda: [s for s in ask(prometheus.url, rate, span=30) if len(s.samples) >= 2],
        timeout=30,
        what="two evaluations of a rate",
    )
    assert all(value >= 0 for s in series for _, value in s.samples)
    handlers = {s.labels["handler"] for s in series}
    assert "/api/v1/query" in handlers  # the queries above
    times = [t for t, _ in series[0].samples]
    assert times == sorted(times)


def test_nan_and_infinite_samples_are_left_out(prometheus: Prometheus) -> None:  # noqa: F811
    assert ask(prometheus.url, "vector(1)")[0].samples[0][1] == 1.0
    for promql in ("vector(0) / 0", "vector(1) / 0", "vector(-1) / 0"):
        [series] = ask(prometheus.url, promql)
        assert series.samples == [], promql
    [ranged] = ask(prometheus.url, "vector(0) / 0", span=5)
    assert ranged.samples == []


def test_errors_say_what_went_wrong(prometheus: Prometheus) -> None:  # noqa: F811
    with pytest.raises(PrometheusAnswerError) as bad:
        ask(prometheus.url, "rate(up[")
    assert bad.value.status == 400
    assert bad.value.error_type == "bad_data"
    assert "bad_data" in str(bad.value)
    assert prometheus.url in str(bad.value)

    with pytest.raises(UnexpectedResult, match=r"a scalar, not a vector \(wrap a scalar"):
        ask(prometheus.url, "1 + 1")
    with pytest.raises(UnexpectedResult, match="a string, not a vector"):
        ask(prometheus.url, '"text"')

    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusUnreachable, match="cannot connect"):
        ask(nobody, "up")


def fake(status: int, body: bytes, headers: dict[str, str] | None = None) -> PrometheusClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return PrometheusClient("http://prometheus.test", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(
    ("status", "body", "headers", "said"),
    [
        (502, b"<html>Bad Gateway</html>", {}, "HTTP 502, not a Prometheus API answer: <html>"),
        (302, b"", {"location": "http://elsewhere/"}, "redirected to http://elsewhere/"),
        (
            200,
            b'{"status": "success", "data": {"resultType": "matrix", "result": []}}',
            {},
            "a matrix, not a vector",
        ),
        (
            200,
            b'{"status": "success", "data": {"resultType": "vector", "result": [{}]}}',
            {},
            "a malformed vector sample",
        ),
        (200, b"[]", {}, "not a Prometheus API answer"),
    ],
)
def test_answers_that_are_not_a_result(
    status: int, body: bytes, headers: dict[str, str], said: str
) -> None:
    client = fake(status, body, headers)
    with pytest.raises((PrometheusAnswerError, UnexpectedResult)) as error:
        run(client.query("up"))
    assert said in str(error.value)


def test_a_timeout_is_unreachable() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = PrometheusClient("http://prometheus.test", transport=httpx.MockTransport(hang))
    with pytest.raises(PrometheusUnreachable, match="no answer within 10 s"):
        run(client.query("up"))
