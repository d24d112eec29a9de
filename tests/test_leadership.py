"""Work that must happen once per database runs on one server: the elected leader. Another
server on the same PostgreSQL database waits on standby and takes over when the leader stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fleetops.db import Leadership, make_engine
from fleetops.kit.background import LeaderOnly, Loop
from fleetops.main import create_app
from tests.fixtures.app import make_settings
from tests.fixtures.waiting import eventually, wait_for


def _postgresql_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("one process owns a SQLite file: it always leads")


def test_a_standby_runs_the_singleton_work_only_once_the_leader_stops(db_url: str) -> None:
    _postgresql_only(db_url)

    async def scenario() -> None:
        ticks = {"first": 0, "second": 0}

        def counter(name: str) -> Loop:
            async def tick() -> None:
                while True:
                    ticks[name] += 1
                    await asyncio.sleep(0.02)

            return Loop(name, tick)

        engines = [make_engine(db_url), make_engine(db_url)]
        leaders = [Leadership(e, "test-leader", retry=0.1) for e in engines]
        first, second = (
            LeaderOnly(counter(name), leader)
            for name, leader in zip(("first", "second"), leaders, strict=True)
        )
        await first.start()
        await eventually(lambda: first.running, what="the first server to lead")
        await second.start()
        await asyncio.sleep(0.5)
        assert (first.running, second.running) == (True, False)
        assert ticks["second"] == 0
        await first.stop()
        await leaders[0].stop()
        await eventually(lambda: second.running, what="the standby to take over")
        before = ticks["first"]
        await asyncio.sleep(0.2)
        assert ticks["first"] == before
        assert ticks["second"] > 0
        await second.stop()
        await leaders[1].stop()
        for engine in engines:
            engine.dispose()

    asyncio.run(scenario())


def _running(app: FastAPI) -> dict[str, bool]:
    return {s.name: s.running for s in app.state.services if isinstance(s, LeaderOnly)}


def test_two_servers_on_one_database_run_the_health_policy_once(
    db_url: str, tmp_path: Path
) -> None:
    _postgresql_only(db_url)
    settings = [
        make_settings(db_url, tmp_path / name, engine_enabled=False, health_policy_enabled=True)
        for name in ("a", "b")
    ]
    with TestClient(create_app(settings[0])) as first:
        leader: FastAPI = first.app  # type: ignore[assignment]
        wait_for(lambda: all(_running(leader).values()), what="the leader's work to start")
        assert _running(leader) == {"logs-retention": True, "health-policy": True}
        with TestClient(create_app(settings[1])) as second:
            standby: FastAPI = second.app  # type: ignore[assignment]
            assert second.get("/api/health").status_code == 200  # it serves all the same
            assert _running(standby) == {"logs-retention": False, "health-policy": False}
            assert (leader.state.leader.leading, standby.state.leader.leading) == (True, False)
