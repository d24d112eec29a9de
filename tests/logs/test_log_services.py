"""The logs domain inside the server: syslog wired to storage, rate limits, and rollups that
survive an abrupt stop (replayed from the stored lines, neither lost nor doubled)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.logs.ingest.http import PayloadError, parse_json_records
from fleetops.logs.ingest.pipeline import StoredLine
from fleetops.logs.tasks import LogServices
from fleetops.main import create_app
from fleetops.models import LatencyWindow, LinkWindow, LogJob, TemplateCount
from fleetops.sim.feeder import ndjson
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload
from tests.fixtures.app import make_settings, seed_users
from tests.fixtures.server import free_port
from tests.logs.ingest_helpers import ingest_token, stored


def test_syslog_listener_stores_what_logger_sends(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    app = create_app(make_settings(db_url, tmp_path, syslog_port=port))
    with TestClient(app):
        for flag in ("--rfc5424", "--rfc3164"):
            subprocess.run(
                ["logger", "--server", "127.0.0.1", "--port", str(port), "--tcp", flag,
                 "--tag", "kernel", f"EXT4-fs error (device sda1): sent {flag}"],
                check=True,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while len(rows := stored(db_url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert sorted(r["message"] for r in rows) == [
        "EXT4-fs error (device sda1): sent --rfc3164",
        "EXT4-fs error (device sda1): sent --rfc5424",
    ]
    assert {r["source"] for r in rows} == {"syslog"}
    assert all(r["labels"]["app"] == "kernel" for r in rows)


def test_rate_limit_answers_429_with_retry_after(db_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(db_url, tmp_path, ingest_rate_lines=50))
    with TestClient(app) as client:
        tokens = seed_users(db_url)
        headers = ingest_token(client, tokens)
        lines = [{"message": f"line {i}"} for i in range(40)]
        assert client.post("/api/v1/logs", json=lines, headers=headers).status_code == 200
        refused = client.post("/api/v1/logs", json=lines, headers=headers)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "retry" in refused.json()["detail"]
    assert len(stored(db_url)) == 40  # the refused batch is not half-stored


def test_pipeline_refuses_beyond_its_queue_and_loses_nothing_accepted(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    services = LogServices(
        make_settings(db_url, tmp_path, ingest_queue_lines=1000), make_session_factory(engine)
    )

    async def flood() -> tuple[int, int]:
        await services.start()
        from fleetops.logs.ingest.records import LogRecord, Overloaded

        async def one(n: int) -> int:
            try:
                result = await services.pipeline.submit(
                    "t", [LogRecord(message=f"m {n} {i}", host="h") for i in range(400)]
                )
            except Overloaded:
                return 0
            return result.accepted

        counts = await asyncio.gather(*(one(n) for n in range(20)))
        await services.stop()
        return sum(counts), sum(1 for c in counts if c == 0)

    accepted, refused = asyncio.run(flood())
    engine.dispose()
    assert refused > 0
    assert accepted == 400 * (20 - refused)
    assert len(stored(db_url)) == accepted


def test_the_queue_is_bounded_in_bytes_too(db_url: str, tmp_path: Path) -> None:
    """A few huge lines fill the queue as surely as many small ones: 1 MiB of queue takes three
    batches of 300 KiB lines, not twenty."""
    engine = make_engine(db_url)
    services = LogServices(
        make_settings(db_url, tmp_path, ingest_queue_bytes=1024 * 1024),
        make_session_factory(engine),
    )
    big = "x" * (60 * 1024)

    async def flood() -> list[int]:
        await services.start()
        from fleetops.logs.ingest.records import LogRecord, Overloaded

        async def one(n: int) -> int:
            try:
                batch = [LogRecord(message=f"{n} {i} {big}", host="h") for i in range(5)]
                return (await services.pipeline.submit("t", batch)).accepted
            except Overloaded:
                return 0

        counts = await asyncio.gather(*(one(n) for n in range(20)))
        await services.stop()
        return counts

    counts = asyncio.run(flood())
    engine.dispose()
    assert 0 < sum(1 for c in counts if c) < 20
    assert sum(counts) == len(stored(db_url))


def _rollups(db_url: str) -> dict[str, Any]:
    engine = make_engine(db_url)
    with make_session_factory(engine, write=False)() as s:
        out = {
            "latency": sorted(
                (r.start, r.seconds, r.metric, r.count) for r in s.scalars(select(LatencyWindow))
            ),
            "links": sorted(
                (r.start, r.seconds, r.src_rack, r.dst_rack, r.transfers)
                for r in s.scalars(select(LinkWindow))
            ),
            "templates": sum(r.count for r in s.scalars(select(TemplateCount))),
            "jobs": sorted(
                (j.app_id, j.state, j.tasks_finished) for j in s.scalars(select(LogJob))
            ),
        }
    engine.dispose()
    return out


@pytest.mark.slow
def test_rollups_after_an_abrupt_stop_equal_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    fleet = generate(hosts=100, racks=4, seed=2)
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    batches = []
    workload = Workload(fleet, seed=3, start=start)
    for step in range(1, 91):
        batches.append(workload.advance(start + timedelta(seconds=2 * step)))

    def run(url: str, *, crash_after: int | None) -> None:
        engine = make_engine(url)
        from fleetops.db import upgrade

        upgrade(engine)
        sessions = make_session_factory(engine)
        with session_scope(sessions) as session:
            apply_document(session, AuditContext(actor="test"), fleet)

        async def feed(part: list[Any], *, drain: bool) -> None:
            services = LogServices(make_settings(url, tmp_path, logs_realtime=False), sessions)
            await services.start()
            for batch in part:
                records = parse_json_records(ndjson(batch), peer="sim")
                await services.pipeline.submit("sim", records)
                await asyncio.sleep(0)
            if drain:
                await services.drain()
                await services.stop()
            else:  # abrupt: no drain, open windows are lost from memory
                for task in services._tasks:
                    task.cancel()
                await services.pipeline.stop()

        if crash_after is None:
            asyncio.run(feed(batches, drain=True))
        else:
            asyncio.run(feed(batches[:crash_after], drain=False))
            asyncio.run(feed(batches[crash_after:], drain=True))
        engine.dispose()

    whole = f"sqlite:///{tmp_path / 'whole.db'}"
    crashed = f"sqlite:///{tmp_path / 'crashed.db'}"
    run(whole, crash_after=None)
    run(crashed, crash_after=47)
    expected, got = _rollups(whole), _rollups(crashed)
    assert expected["latency"], "the run produced no rollups"
    for key in expected:
        assert got[key] == expected[key], (
            key,
            (
                sorted(set(got[key]) - set(expected[key]))[:4],
                sorted(set(expected[key]) - set(got[key]))[:4],
            )
            if isinstance(got[key], list)
            else (got[key], expected[key]),
        )


def test_json_parser_never_fails_with_anything_but_a_payload_error() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=512) | st.text(max_size=256).map(str.encode))
    def check(body: bytes) -> None:
        try:
            records = parse_json_records(body, peer="p")
        except PayloadError as exc:
            status = exc.status
        else:
            status = 200
            assert all(isinstance(r.message, str) for r in records)
        assert status in (200, 400, 413, 415)

    check()


_ = StoredLine  # the type the services hand to subscribers


def test_merged_templates_keep_their_ids_as_aliases_across_a_restart(
    db_url: str, tmp_path: Path
) -> None:
    from fleetops.logs import service as logs_service
    from fleetops.logs.ingest.records import LogRecord

    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    queues = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]

    async def run(words: list[str]) -> list[int]:
        services = LogServices(make_settings(db_url, tmp_path), factory)
        await services.start()
        for word in words:  # one commit each: merges are recorded in a later commit than ids
            await services.pipeline.submit(
                "t", [LogRecord(message=f"job finished on queue {word}", host="h")], wait=True
            )
        await services.stop()
        return [line["template_id"] for line in stored(db_url)]

    first = asyncio.run(run(queues))
    assert len(set(first)) == 5  # five words were five events; the sixth made them one
    after_restart = asyncio.run(run(["beta", "omega"]))[len(queues) :]
    assert after_restart == [first[0], first[0]]  # the oldest id, for old and new words alike
    with session_scope(factory) as session:
        templates, total = logs_service.list_templates(
            session, contains="job finished", since=None, order="id", limit=10, offset=0
        )
        assert total == 1
        assert templates[0].id == first[0]
        assert templates[0].text == "job finished on queue <*>"
        assert templates[0].count == len(queues) + 2
        assert logs_service.get_template(session, first[1]).alias_of == first[0]
        query = logs_service.LineQuery(template_id=first[0])
        assert len(logs_service.search_lines(session, query, limit=100)) == len(queues) + 2
    engine.dispose()
