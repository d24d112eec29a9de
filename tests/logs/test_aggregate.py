"""Stream aggregation: event-time windows, rollup rows, jobs, late lines, resume points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleetops.inventory.service import Topology
from fleetops.logs.aggregate.rules import load_rules
from fleetops.logs.aggregate.stream import LONG, SHORT, Aggregator
from fleetops.logs.ingest.pipeline import StoredLine

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
TOPOLOGY = Topology(
    rack_of={"a1": "r1", "a2": "r1", "b1": "r2"},
    tor_of_rack={"r1": "tor-1", "r2": "tor-2"},
    host_of_address={"10.0.1.1": "a1", "10.0.1.2": "a2", "10.0.2.1": "b1"},
    dc_of_rack={"r1": "dc", "r2": "dc"},
)


def line(at: float, content: str, host: str = "a1", template: int = 1, **labels: str) -> StoredLine:
    return StoredLine(T0 + timedelta(seconds=at), host, "test", template, content, None, labels, 0)


def aggregator() -> Aggregator:
    return Aggregator(load_rules(), lambda: TOPOLOGY)


def test_windows_close_only_after_the_watermark_passes() -> None:
    agg = aggregator()
    agg.add([line(1, "hello"), line(9, "hello")])
    assert agg.advance() is None  # newest event 9 s, lateness 5 s: window [0, 10) still open
    agg.add([line(16, "hello")])
    closed = agg.advance()
    assert closed is not None
    assert closed.windows_closed == [T0 + timedelta(seconds=10)]
    agg.add([line(3, "too late")])
    assert agg.late == 1


def test_task_and_job_rollups() -> None:
    agg = aggregator()
    app = "application_1_0001"
    lines = [line(0, f"{app} State change from ACCEPTED to RUNNING on event = APP_ACCEPTED", "m")]
    for i, ms in enumerate([1000, 1100, 900, 1000, 1050, 5000]):
        host = "b1" if i == 5 else "a1"
        lines.append(
            line(
                2 + i,
                f"Finished task {i}.0 in stage 1.0 (TID {i}) in {ms} ms on {host} (executor 1)",
                "driver",
                application=app,
            )
        )
    lines.append(line(30, f"{app} State change from FINISHING to FINISHED on event = X", "m"))
    agg.add(lines)
    agg.add([line(200, "later")])
    closed = agg.advance()
    assert closed is not None
    task_minute = next(r for r in closed.latency if r["metric"] == "task" and r["seconds"] == LONG)
    assert task_minute["count"] == 6
    assert 990 <= task_minute["p50"] <= 1060
    assert task_minute["max"] == 5000
    job = next(r for r in closed.latency if r["metric"] == "job" and r["seconds"] == SHORT)
    assert job["count"] == 1
    assert abs(job["p50"] - 30) < 0.5
    [row] = closed.jobs
    assert row["state"] == "finished"
    assert row["duration_s"] == 30
    assert closed.job_tasks == [{"app_id": app, "finished": 6, "failed": 0}]
    b1 = next(r for r in closed.host_tasks if r["host"] == "b1")
    assert b1["ratio"] is not None
    assert b1["ratio"] > 4  # 5 s against a stage median of about 1 s


def test_transfers_fill_the_rack_matrix_and_slow_ones_are_flagged() -> None:
    agg = aggregator()
    fast = (
        "src: /10.0.1.1:50010, dest: /10.0.2.1:4000, bytes: 134217728, op: HDFS_READ, "
        "cliID: x, offset: 0, srvID: y, blockid: b, duration(ns): {}"
    )
    agg.add([line(i * 0.1, fast.format(1_000_000_000)) for i in range(60)])
    agg.add([line(7, fast.format(10_000_000_000))])  # ten times slower than the others
    agg.add([line(30, "tick")])
    closed = agg.advance()
    assert closed is not None
    cell = next(r for r in closed.links if r["seconds"] == SHORT and r["start"] == T0)
    assert (cell["src_rack"], cell["dst_rack"]) == ("r1", "r2")
    assert cell["transfers"] == 61
    assert cell["slow"] == 1
    assert 130 <= cell["mbps_p50"] <= 137
    assert [t.slow for t in agg.transfers].count(True) == 1


def test_error_signatures_are_counted_per_host_and_minute() -> None:
    agg = aggregator()
    edac = "[1.2] EDAC MC0: 1 CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1)"
    slow = "Slow BlockReceiver write data to disk cost:{}ms (threshold=300ms), volume=x"
    agg.add([line(1, edac, "a2"), line(2, edac, "a2"), line(3, slow.format(2000), "a1")])
    agg.add([line(4, slow.format(400), "a1"), line(100, "tick")])
    closed = agg.advance()
    assert closed is not None
    counts = {(r["host"], r["signature"]): r["count"] for r in closed.errors}
    assert counts == {("a2", "edac_ce"): 2, ("a1", "slow_disk"): 1, ("a1", "slow_disk_minor"): 1}


def test_resume_point_is_the_oldest_open_window() -> None:
    agg = aggregator()
    agg.add([line(5, "a"), line(65, "b")])
    closed = agg.advance()  # watermark 60 s: [0, 10) and [0, 60) are final, [60, ...) open
    assert closed is not None
    assert agg.resume_point() == T0 + timedelta(seconds=60)


def test_new_and_bursting_templates_are_proposed() -> None:
    from fleetops.logs.detect.detectors import DetectorConfig, template_bursts

    agg = aggregator()
    for minute in range(20):
        agg.add([line(minute * 60 + i, "steady", template=1) for i in range(5)])
    agg.add([line(20 * 60 + i * 0.2, "storm", template=1) for i in range(200)])
    agg.add([line(20 * 60 + 5, "never seen", template=2)])
    agg.add([line(21 * 60 + 30, "tick", template=1)])
    closed = agg.advance()
    assert closed is not None
    found = {c.kind: c for c in template_bursts(agg, T0 + timedelta(minutes=21), DetectorConfig())}
    assert found["template_burst"].entity == "1"
    assert found["new_template"].entity == "2"
    young = aggregator()
    young.add([line(i, "a", template=1) for i in range(3)] + [line(200, "b", template=2)])
    young.advance()
    assert template_bursts(young, T0 + timedelta(seconds=200), DetectorConfig()) == []
