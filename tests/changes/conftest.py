from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fleetops.adapters.local import LocalExecutor
from fleetops.main import create_app
from fleetops.sim.executor import SimulatedExecutor
from tests.changes.fleet import write_ops
from tests.fixtures.app import Tokens, make_settings, seed_users


@pytest.fixture
def ops_dir(tmp_path: Path) -> Path:
    return write_ops(tmp_path / "ops")


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.mkdir()
    return path


@pytest.fixture
def engine_client(db_url: str, tmp_path: Path, ops_dir: Path) -> Iterator[TestClient]:
    """The app with its change engine running (fast ticks, local executor)."""
    settings = make_settings(
        db_url,
        tmp_path / "data",
        operations_dir=ops_dir,
        engine_tick_seconds=0.05,
        executor="local",
        budget_rack=1.0,
        budget_cluster=1.0,
    )
    executors = {"local": LocalExecutor(), "simulated": SimulatedExecutor(latency=0.01, seed=1)}
    with TestClient(create_app(settings, executors=executors)) as client:
        yield client


@pytest.fixture
def users(engine_client: TestClient, db_url: str) -> Tokens:
    return seed_users(db_url)
