"""The simulated fleet the inode tests collect from: 12 hosts in 2 racks that the real engine
runs changes on through the simulated executor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fleetops.sim.executor import SimulatedExecutor
from tests.fixtures.app import Tokens, seed_users, simulated_fleet_client

HOSTS, RACKS = 12, 2


@pytest.fixture
def fleet_client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    executor = SimulatedExecutor(seed=1)
    with simulated_fleet_client(db_url, tmp_path / "data", executor, hosts=HOSTS, racks=RACKS) as c:
        yield c


@pytest.fixture
def fleet_users(fleet_client: TestClient, db_url: str) -> Tokens:
    return seed_users(db_url)
