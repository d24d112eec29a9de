"""The demo's throughput metrics: the shop's transactions, and the work the simulated fleet did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleetops.metrics.schemas import MetricPush
from fleetops.sim.business import FINISHED, ShopFeed
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload


def test_the_fleet_counts_the_tasks_and_jobs_it_finished() -> None:
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    workload = Workload(generate(hosts=60, racks=3), seed=5, start=start)
    workload.advance(start + timedelta(minutes=1))
    early = dict(workload.finished)
    lines = workload.advance(start + timedelta(minutes=6))
    done = sum(
        1 for line in lines if "Finished task" in line.message and "bytes result" in line.message
    )
    assert workload.finished["tasks"] - early["tasks"] == done > 0  # one per executor's line
    assert workload.finished["jobs"] >= early["jobs"]


def test_a_push_carries_each_count_of_the_last_second_as_the_api_takes_it() -> None:
    feed = ShopFeed("http://127.0.0.1:9/api/v1/metrics", "token", lines_sent=lambda: 0)
    points = feed.sample(datetime.now(UTC), 120, {"jobs": 2, "tasks": 350})
    by_name = {p["name"]: p for p in points}
    assert by_name[FINISHED["tasks"]]["value"] == 350
    assert by_name[FINISHED["jobs"]]["value"] == 2
    assert by_name["fleetops.log_lines"]["value"] == 120
    assert all(p["kind"] == "count" for p in points)
    MetricPush.model_validate({"points": points})  # what POST /api/v1/metrics accepts
