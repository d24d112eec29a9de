"""On PostgreSQL, one engine drives changes; another waits on standby and takes over."""

from __future__ import annotations

import asyncio

import pytest

from fleetops.changes.engine.guardrails import Budget
from fleetops.changes.engine.runner import Engine
from fleetops.changes.operations import load_library
from fleetops.db import make_engine, make_session_factory
from fleetops.sim.executor import SimulatedExecutor


def _engine(url: str) -> Engine:
    db = make_engine(url)
    sim = SimulatedExecutor()
    return Engine(
        sessions=make_session_factory(db),
        library=load_library(),
        executor_for=lambda _t: sim,
        budget=Budget(1.0, 1.0, 100),
        tick=0.05,
    )


def test_one_leader_and_a_standby_that_takes_over(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has a single process by construction")

    async def scenario() -> None:
        first, second = _engine(db_url), _engine(db_url)
        a = asyncio.create_task(first.run_forever())
        await asyncio.sleep(0.5)
        b = asyncio.create_task(second.run_forever())
        await asyncio.sleep(1.0)
        assert (first.leading, second.leading) == (True, False)
        a.cancel()  # the leader dies: its lock goes with its connection
        await asyncio.gather(a, return_exceptions=True)
        for _ in range(100):
            if second.leading:
                break
            await asyncio.sleep(0.1)
        assert second.leading
        b.cancel()
        await asyncio.gather(b, return_exceptions=True)

    asyncio.run(scenario())
