"""The Prometheus poller: configured queries stored as metrics, through outages."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from fleetops.config import PrometheusSource, Settings
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.main import create_app
from fleetops.metrics import service
from fleetops.metrics.exceptions import PrometheusUnreachable
from fleetops.metrics.schemas import MetricPoint, QueriedSeries
from fleetops.metrics.tasks import PrometheusPoller
from tests.fixtures.app import make_settings, seed_users
from tests.fixtures.prometheus import Prometheus, prometheus  # noqa: F401  (fixture)
from tests.fixtures.server import cli_env, run_cli
from tests.fixtures.waiting import wait_for

NOW = service.window_start(datetime.now(UTC)) + timedelta(seconds=3)
SOURCE = PrometheusSource(name="prom.load", query="load", url="http://prom.test:9090", interval=5)


class Stop(Exception):
    """Ends a poller's loop after a number of sleeps."""


class FakeReader:
    """Answers from a script: a list of series or an exception, one per instant query."""

    def __init__(self, backfill: list[QueriedSeries], answers: list[object]) -> None:
        self.backfill = backfill
        self.answers = answers
        self.ranges: list[tuple[datetime, datetime, float]] = []
        self.closed = False

    async def query(self, promql: str) -> list[QueriedSeries]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, list)
        return answer

    async def query_range(
        self, promql: str, *, start: datetime, end: datetime, step: float
    ) -> list[QueriedSeries]:
        self.ranges.append((start, end, step))
        return self.backfill

    async def aclose(self) -> None:
        self.closed = True


def series(*samples: tuple[float, float], **labels: str) -> QueriedSeries:
    """Samples as (seconds before NOW, value)."""
    return QueriedSeries(
        labels={"__name__": "load", **labels},
        samples=[(NOW - timedelta(seconds=ago), value) for ago, value in samples],
    )


def drive(db_url: str, reader: FakeReader, sleeps: int) -> tuple[list[float], PrometheusPoller]:
    """Run the source's loop until it has slept `sleeps` times; the delays asked for."""
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) >= sleeps:
            raise Stop

    engine = make_engine(db_url)
    poller = PrometheusPoller(
        make_session_factory(engine),
        [SOURCE],
        lambda url: reader,
        backfill=timedelta(hours=1),
        clock=lambda: NOW,
        sleep=sleep,
    )
    with pytest.raises(Stop):
        asyncio.run(poller.run_source(SOURCE))
    asyncio.run(poller.stop())
    engine.dispose()
    return delays, poller


def stored(db_url: str, name: str = "prom.load") -> list[tuple[datetime, float]]:
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        _, points = service.values(session, name, NOW - timedelta(hours=2), NOW + timedelta(1))
    engine.dispose()
    return points


def test_backfill_then_poll_and_an_outage_logged_once(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = PrometheusUnreachable("http://prom.test:9090/api/v1/query: cannot connect")
    reader = FakeReader(
        backfill=[series((600, 2.0), (300, 4.0), host="a"), series((600, 1.0), host="b")],
        answers=[down, down, down, [series((0, 7.0), host="a")]],
    )
    with caplog.at_level(logging.WARNING, logger="fleetops.metrics.tasks"):
        delays, poller = drive(db_url, reader, sleeps=5)
    assert delays == [5, 10, 20, 40, 5]  # the interval, doubling while down, then again
    [(start, end, step)] = reader.ranges
    assert (start, end, step) == (NOW - timedelta(hours=1), NOW, 5)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages  # once down, once back: not at every retry
    assert "cannot connect" in messages[0]
    assert "retrying with backoff" in messages[0]
    assert "answering again after 3 failed tries" in messages[1]
    assert poller.stored["prom.load"] == 4
    assert reader.closed
    # per window, summed over the series (host a and b)
    assert [v for _, v in stored(db_url)] == [3.0, 4.0, 7.0]


def test_a_restart_backfills_from_where_the_windows_end(db_url: str) -> None:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        point = MetricPoint(name="prom.load", value=1, time=NOW - timedelta(seconds=30))
        service.record(session, [point], now=NOW)
    engine.dispose()
    reader = FakeReader(backfill=[], answers=[])
    drive(db_url, reader, sleeps=1)
    [(start, _, _)] = reader.ranges
    assert start == service.window_start(NOW - timedelta(seconds=30)) + timedelta(seconds=10)


def test_a_series_the_store_cannot_take_is_skipped_and_logged_once(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    wide = {f"l{i}": "x" for i in range(17)}
    reader = FakeReader(
        backfill=[series((60, 1.0), **wide), series((60, 5.0), host="a")],
        answers=[[series((0, 1.0), **wide)]],
    )
    with caplog.at_level(logging.WARNING, logger="fleetops.metrics.tasks"):
        _, poller = drive(db_url, reader, sleeps=2)
    assert poller.stored["prom.load"] == 1
    assert [v for _, v in stored(db_url)] == [5.0]
    assert len(caplog.records) == 1
    assert "not stored" in caplog.records[0].getMessage()


def test_sources_are_checked_at_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = {"name": "prom.up", "query": "up", "url": "http://127.0.0.1:9090/"}
    monkeypatch.setenv("FLEETOPS_PROMETHEUS_SOURCES", f"[{str(good).replace(chr(39), chr(34))}]")
    [source] = Settings(data_dir=tmp_path).prometheus_sources
    assert (source.url, source.interval, source.kind) == ("http://127.0.0.1:9090", 15, "gauge")
    cases = [
        ({**good, "url": "prometheus:9090"}, "is not an http(s) URL with a host"),
        ({**good, "url": "http://u:p@h:9090"}, "credentials would show"),
        ({**good, "name": "bad name"}, "String should match pattern"),
        ({**good, "interval": 0.1}, "greater than or equal to 1"),
        ({**good, "kind": "count"}, "'gauge'"),
    ]
    for bad, said in cases:
        with pytest.raises(ValidationError, match=re.escape(said)):
            Settings(data_dir=tmp_path, prometheus_sources=[bad])
    with pytest.raises(ValidationError, match=r"two sources store as 'prom\.up'"):
        Settings(data_dir=tmp_path, prometheus_sources=[good, good])


def test_the_server_refuses_to_start_with_a_bad_source(db_url: str, tmp_path: Path) -> None:
    sources = '[{"name": "prom.up", "query": "up", "url": "ftp://x"}]'
    env = cli_env(db_url, tmp_path, FLEETOPS_PROMETHEUS_SOURCES=sources)
    result = run_cli(env, "serve", "--port", "1")
    assert result.returncode != 0
    assert "FLEETOPS_PROMETHEUS_SOURCES_0_URL" in result.stderr
    assert "not an http(s) URL" in result.stderr


def test_the_server_polls_a_real_prometheus(
    db_url: str,
    tmp_path: Path,
    prometheus: Prometheus,  # noqa: F811
) -> None:
    source = {"name": "prom.up", "query": "up", "url": prometheus.url, "interval": 1}
    settings = make_settings(db_url, tmp_path / "data", prometheus_sources=[source])
    with TestClient(create_app(settings)) as client:
        viewer = seed_users(db_url).headers("viewer")

        def polled() -> object:
            answer = client.get("/api/v1/metrics/prom.up", headers=viewer)
            return answer.status_code == 200 and len(answer.json()["points"]) >= 2 and answer

        answer = wait_for(polled, timeout=30, what="two windows of `up`", explain=prometheus.output)
        assert answer
        assert answer.json()["kind"] == "gauge"
        assert {p["value"] for p in answer.json()["points"]} == {1.0}
        listed = client.get("/api/v1/metrics", headers=viewer).json()
        assert {"name": "prom.up", "kind": "gauge", "series": 1} in listed
        poller = client.app.state.services  # type: ignore[attr-defined]
        assert any(getattr(s, "name", "") == "prometheus-poller" for s in poller)


def test_an_unreachable_prometheus_does_not_stop_the_server(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = {"name": "prom.up", "query": "up", "url": "http://127.0.0.1:9", "interval": 1}
    settings = make_settings(db_url, tmp_path / "data", prometheus_sources=[source])
    with caplog.at_level(logging.WARNING, logger="fleetops.metrics.tasks"):
        with TestClient(create_app(settings)) as client:
            assert client.get("/api/health").status_code == 200
            wait_for(lambda: caplog.records, timeout=10, what="the outage's warning")
    [record] = caplog.records
    assert "http://127.0.0.1:9/api/v1/query_range: cannot connect" in record.getMessage()
