"""Acceptance: hardware faults on 30 % of a 1,000-host fleet, arriving within seconds.

The server runs as in production (change engine, health policy passes, simulated executor whose
drains take a while); the faults arrive as findings in waves. A watcher samples the device states
all along: the out-of-service count of every rack and cluster stays within its cap at every
instant, automatic isolation stops once the wave outgrows the storm threshold, and one
`fleet_storm` finding asks a human to look.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleetops.db import make_engine, make_session_factory
from fleetops.devices.policy.safety import OUT_OF_SERVICE
from fleetops.models import DeviceState, DeviceTransition, Finding, Host
from fleetops.sim.executor import SimulatedExecutor
from tests.devices.factory import hardware_findings
from tests.fixtures.app import simulated_fleet_client
from tests.fixtures.waiting import policy_passes

pytestmark = pytest.mark.slow
RACK_CAP, CLUSTER_CAP = 0.20, 0.05


class Watcher:
    """Samples out-of-service devices per rack and per cluster until stopped; keeps the worst."""

    def __init__(self, db_url: str) -> None:
        self.engine = make_engine(db_url)
        self.sessions = make_session_factory(self.engine, write=False)
        self.worst_rack: Counter[int] = Counter()
        self.worst_cluster: Counter[int] = Counter()
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.sessions() as session:
                rows = session.execute(
                    select(Host.rack_id, Host.cluster_id)
                    .join(DeviceState, DeviceState.host_id == Host.id)
                    .where(DeviceState.state.in_([s.value for s in OUT_OF_SERVICE]))
                ).all()
            racks = Counter(r for r, _ in rows)
            clusters = Counter(c for _, c in rows)
            for rack, n in racks.items():
                self.worst_rack[rack] = max(self.worst_rack[rack], n)
            for cluster, n in clusters.items():
                self.worst_cluster[cluster] = max(self.worst_cluster[cluster], n)
            self.samples += 1
            time.sleep(0.02)


@pytest.fixture
def storm_app(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    executor = SimulatedExecutor(latency=0.3, seed=5)  # a drain takes a few tenths of a second
    with simulated_fleet_client(
        db_url,
        tmp_path / "data",
        executor,
        hosts=1000,
        racks=40,
        isolation_per_hour=1000,  # the rack and cluster caps are what this test is about
        isolation_rack_fraction=RACK_CAP,
        isolation_cluster_fraction=CLUSTER_CAP,
    ) as client:
        yield client


def test_a_fault_storm_never_breaks_the_caps_and_stops_automation(
    storm_app: TestClient, db_url: str
) -> None:
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        names = list(session.scalars(select(Host.hostname).order_by(Host.hostname)))
        rack_size = dict(
            session.execute(select(Host.rack_id, func.count()).group_by(Host.rack_id)).all()
        )
        cluster_size = dict(
            session.execute(select(Host.cluster_id, func.count()).group_by(Host.cluster_id)).all()
        )
    faulty = random.Random(11).sample(names, k=300)
    watcher = Watcher(db_url)
    watcher.thread.start()
    try:
        for wave in range(20):  # 15 hosts every 0.3 s: the storm builds up over 6 seconds
            hardware_findings(db_url, *faulty[wave * 15 : (wave + 1) * 15])
            time.sleep(0.3)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as session:
                storm = session.scalar(select(Finding).where(Finding.kind == "fleet_storm"))
                draining = session.scalar(
                    select(func.count())
                    .select_from(DeviceState)
                    .where(DeviceState.state == "draining")
                )
            if storm is not None and draining == 0:
                break
            time.sleep(0.2)
        policy_passes(storm_app)  # nothing may move
    finally:
        watcher.stop.set()
        watcher.thread.join()
        watcher.engine.dispose()

    assert storm is not None, "no fleet_storm finding"
    assert (storm.severity, storm.status) == ("critical", "open")
    assert storm.details["threshold"] == 50  # 5 % of 1,000
    assert len(storm.details["hosts"]) > 50
    assert watcher.samples > 50
    for rack, worst in watcher.worst_rack.items():
        assert worst <= max(1, math.floor(rack_size[rack] * RACK_CAP)), f"rack {rack}: {worst}"
    for cluster, worst in watcher.worst_cluster.items():
        cap = max(1, math.floor(cluster_size[cluster] * CLUSTER_CAP))
        assert worst <= cap, f"cluster {cluster}: {worst} out of service, cap {cap}"
    with sessions() as session:
        drains = session.scalars(
            select(DeviceTransition.at).where(
                DeviceTransition.to_state == "draining",
                DeviceTransition.actor.startswith("policy:"),
            )
        ).all()
        out = session.scalar(
            select(func.count())
            .select_from(DeviceState)
            .where(DeviceState.state.in_([s.value for s in OUT_OF_SERVICE]))
        )
    engine.dispose()
    # Isolation happened while it was safe, within the caps, and stopped with the storm.
    assert drains, "nothing was isolated before the storm"
    assert max(drains) < storm.first_seen
    assert out is not None
    assert out <= sum(max(1, math.floor(n * CLUSTER_CAP)) for n in cluster_size.values())
