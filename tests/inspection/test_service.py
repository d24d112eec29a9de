"""The inspection service on a real database: the action over the local executor with the real
tools, stored verdicts, baselines built from healthy results, and the queries."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fleetops.adapters.local import LocalExecutor
from fleetops.changes.executor import Result, Target
from fleetops.db import make_session_factory
from fleetops.inspection import baselining, repository, service
from fleetops.inspection.exceptions import InspectionNotFound
from fleetops.inspection.probes import LoadSample, ProbeResult
from fleetops.inspection.service import HostInfo, InspectionService, Measured, Outcome
from fleetops.inspection.verdicts import LoadLimits
from fleetops.models import AuditRecord, BaselineRow, HardwareModel, Host, ProbeRun, utcnow
from tests.inspection.factories import IDLE

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("fio", "sysbench")),
    reason="needs fio and sysbench (apt-get install -y fio sysbench)",
)
MODEL = "R740"
BUSY = dataclasses.replace(IDLE, load1_before=7.0)  # 0.875 per CPU: above judge's 0.5
N = os.cpu_count() or 1
CPU_POINTS = ["events/s 1 thread"] + ([] if N == 1 else [f"events/s {N} threads"])


def add_host(
    session: Session, hostname: str, *, model: str = MODEL, state: str = "in_service"
) -> Host:
    hw = session.scalar(select(HardwareModel).where(HardwareModel.name == model))
    if hw is None:
        hw = HardwareModel(name=model)
        session.add(hw)
        session.flush()
    host = Host(hostname=hostname, model_id=hw.id, state=state)
    session.add(host)
    session.flush()
    return host


def add_run(
    session: Session,
    hostname: str,
    value: float,
    *,
    probe: str = "disk",
    status: str = "inconclusive",
    load: LoadSample = IDLE,
    state: str = "in_service",
    days_ago: float = 0,
    points: list[str] | None = None,
) -> ProbeRun:
    """A stored result as an earlier record-only inspection leaves it."""
    names = points or ["randread 4KiB qd32", "write 1MiB qd8"]
    run = ProbeRun(
        hostname=hostname,
        model=MODEL,
        probe=probe,
        points=dict.fromkeys(names, value),
        units=dict.fromkeys(names, "IOPS"),
        load=dataclasses.asdict(load),
        status=status,
        host_state=state,
        at=utcnow() - timedelta(days=days_ago),
    )
    session.add(run)
    session.flush()
    return run


def five_healthy(session: Session, probe: str = "disk", points: list[str] | None = None) -> None:
    for i, value in enumerate((96.0, 98.0, 100.0, 102.0, 104.0), start=1):
        add_run(session, f"ok{i}", value, probe=probe, points=points)


def measured(value: float, *, load: LoadSample = IDLE) -> Measured:
    names = ["randread 4KiB qd32", "write 1MiB qd8"]
    result = ProbeResult("disk", "fio-3.33", dict.fromkeys(names, value), {}, load)
    return Measured("disk", result, duration_s=1.5)


def act(engine: Engine, target: str, **params: Any) -> Result:
    inspection = InspectionService(make_session_factory(engine))
    return asyncio.run(inspection.action(LocalExecutor(), Target(target), params, 120))


# --- the action over the local executor ------------------------------------------------------


def test_an_unknown_probe_name_runs_nothing(engine: Engine, session: Session) -> None:
    add_host(session, "h001")
    session.commit()
    result = act(engine, "h001", probes="cpu,gpu")
    assert result.exit_code is None
    assert result.error == "unknown probe(s) 'gpu'; known probes: cpu, memory, disk, smart, network"
    assert session.scalars(select(ProbeRun)).all() == []


def test_no_probe_asked_passes_with_nothing_stored(engine: Engine, session: Session) -> None:
    add_host(session, "h001")
    session.commit()
    result = act(engine, "h001", probes="")  # a verification configured without probes
    assert result.exit_code == 0
    assert result.stdout == "no inspection probe requested: nothing to judge\n"
    smart = act(engine, "h001", probes="smart")
    assert smart.exit_code is None
    assert smart.error == "the smart probe reads one drive: give its device, e.g. /dev/sda"
    assert session.scalars(select(ProbeRun)).all() == []


SMART_DATA = Path(__file__).parents[1] / "devices" / "data"


@pytest.mark.parametrize(
    ("fixture", "exit_bits", "status"),
    [("smartctl_ata_healthy.json", 0, "pass"), ("smartctl_ata_failing.json", 8, "fail")],
)
def test_a_smart_reading_is_judged_by_thresholds_without_a_baseline(
    engine: Engine,
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fixture: str,
    exit_bits: int,
    status: str,
) -> None:
    # smartctl as the drive answers it: the stored JSON, and its exit bitmask (8: failing disk)
    tool = tmp_path / "bin" / "smartctl"
    tool.parent.mkdir()
    tool.write_text(f"#!/bin/sh\ncat {SMART_DATA / fixture}\nexit {exit_bits}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    add_host(session, "h001", model="no-baseline-model")
    session.commit()

    result = act(engine, "h001", probes="smart", device="/dev/sda")

    [run] = session.scalars(select(ProbeRun)).all()
    assert (run.probe, run.status, run.baseline_id) == ("smart", status, None)
    assert run.points["health passed"] == (1 if status == "pass" else 0)
    if status == "fail":
        assert result.exit_code == 1
        assert "the drive's overall health self-assessment failed" in run.reasons
    else:
        assert result.exit_code == 0, result
        assert run.reasons[0].startswith("health self-assessment passed")
    assert session.scalars(select(BaselineRow)).all() == []  # a SMART reading builds none


@needs_tools
def test_a_probe_that_cannot_run_is_stored_as_an_error(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    add_host(session, "h001")
    session.commit()
    (tmp_path / "file").touch()
    missing = tmp_path / "file" / "dir"  # fio creates a missing directory, but not under a file
    result = act(engine, "h001", probes="disk", quick=True, directory=str(missing), change_id=None)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: disk: the disk probe (fio) exited ")
    assert result.stderr.endswith("verdicts: disk error\n")
    [run] = session.scalars(select(ProbeRun)).all()
    assert (run.hostname, run.model, run.probe, run.status) == ("h001", MODEL, "disk", "error")
    assert run.host_state == "in_service"
    assert run.reasons[0].startswith("the disk probe (fio) exited ")
    assert run.reasons[0].endswith(f"failed to create dir ({missing}): Not a directory")
    assert run.points == {}
    assert run.baseline_id is None
    session.commit()  # end this (write) transaction before the service writes again
    # record_only still reports a probe that could not run
    again = act(engine, "h001", probes="disk", quick=True, directory=str(missing), record_only=True)
    assert again.exit_code == 1


@needs_tools
def test_the_first_judged_result_builds_the_missing_baseline(
    engine: Engine, session: Session
) -> None:
    five_healthy(session, "cpu", CPU_POINTS)
    add_host(session, "h006")
    session.commit()
    result = act(engine, "h006", probes="cpu", quick=True, record_only=True, change_id=None)
    assert result.exit_code == 0, result
    [baseline] = session.scalars(select(BaselineRow)).all()
    assert (baseline.model, baseline.probe, baseline.version, baseline.active) == (
        MODEL,
        "cpu",
        1,
        True,
    )
    assert baseline.built_by == "inspection"
    assert baseline.samples == 5
    assert set(baseline.bands) == set(CPU_POINTS)
    run = session.scalars(select(ProbeRun).where(ProbeRun.hostname == "h006")).one()
    assert run.baseline_id == baseline.id
    assert run.id not in baseline.source_runs  # built before this result, not from it
    assert set(run.ratios) == set(CPU_POINTS)
    assert run.status in ("pass", "fail", "inconclusive")  # a real, shared machine
    assert all(v > 0 for v in run.points.values())
    assert run.load["cpus"] == N
    assert f"cpu: {run.status} (baseline {MODEL}/cpu v1): " in result.stdout
    assert result.stdout.endswith(f"verdicts: cpu {run.status} (recorded only)\n")
    audited = session.scalars(select(AuditRecord).where(AuditRecord.action == "baseline.build"))
    [record] = audited.all()
    assert (record.actor, record.entity_id) == ("inspection", str(baseline.id))


@needs_tools
def test_without_enough_healthy_hosts_the_verdict_is_inconclusive(
    engine: Engine, session: Session
) -> None:
    for i in range(1, 5):
        add_run(session, f"ok{i}", 100.0, probe="cpu", points=CPU_POINTS)
    add_host(session, "h006")
    session.commit()
    result = act(engine, "h006", probes="cpu", quick=True)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"inconclusive: cpu: model {MODEL} has no cpu baseline yet: 4 healthy result(s), 5 needed"
    )
    assert session.scalars(select(BaselineRow)).all() == []


# --- verdicts, stored ----------------------------------------------------------------------------


def test_results_are_judged_on_the_active_baseline(session: Session) -> None:
    five_healthy(session)
    host = HostInfo("h006", None, MODEL, "verifying")
    slow, _ = service.record(session, host, measured(50.0), change_id=None)
    v1 = repository.active_baseline(session, MODEL, "disk")
    assert v1 is not None
    assert (slow.status, slow.baseline_id) == ("fail", v1.id)
    assert slow.ratios == {"randread 4KiB qd32": 0.5, "write 1MiB qd8": 0.5}
    assert slow.reasons[0] == "randread 4KiB qd32: 50 % of the model's median (band 90–110 %)"
    good, baseline = service.record(session, host, measured(101.0))
    assert (good.status, baseline) == ("pass", v1)
    busy, _ = service.record(session, host, measured(50.0, load=BUSY))
    assert busy.status == "inconclusive"
    assert busy.reasons == [
        "the machine was busy: 1-minute load 7 on 8 CPUs (0.88 per CPU, limit 0.5)"
    ]
    nameless, none = service.record(session, HostInfo("x1"), measured(50.0))
    assert (nameless.status, none, nameless.model) == ("inconclusive", None, "")
    assert "x1 has no hardware model" in nameless.reasons[0]
    error, _ = service.record(session, host, Measured("disk", None, "fio is not installed"))
    assert (error.status, error.reasons, error.ratios) == ("error", ["fio is not installed"], {})


def test_action_exit_codes() -> None:
    def outcome(probe: str, status: str, unreachable: bool = False) -> Outcome:
        return Outcome(1, probe, status, [f"{probe} says {status}"], "", unreachable)

    passed = service.action_result([outcome("cpu", "pass"), outcome("disk", "pass")])
    assert (passed.exit_code, passed.stderr) == (0, "")
    assert passed.stdout == "cpu: pass: cpu says pass\ndisk: pass: disk says pass\n" + (
        "verdicts: cpu pass, disk pass\n"
    )
    mixed = [outcome("cpu", "inconclusive"), outcome("disk", "fail")]
    failed = service.action_result(mixed)
    assert failed.exit_code == 1
    assert failed.stderr.splitlines() == [
        "fail: disk: disk says fail",
        "inconclusive: cpu: cpu says inconclusive",
        "verdicts: cpu inconclusive, disk fail",
    ]
    unsure = service.action_result([outcome("cpu", "pass"), outcome("disk", "inconclusive")])
    assert (unsure.exit_code, unsure.stderr.startswith("inconclusive: disk")) == (1, True)
    assert service.action_result(mixed, record_only=True).exit_code == 0
    broken = [outcome("cpu", "pass"), outcome("disk", "error")]
    assert service.action_result(broken, record_only=True).exit_code == 1
    gone = service.action_result([outcome("cpu", "error", unreachable=True)], record_only=True)
    assert (gone.exit_code, gone.error) == (None, "cpu says error")


# --- baselines -----------------------------------------------------------------------------------


def test_rebuilding_keeps_the_history(session: Session) -> None:
    five_healthy(session)
    v1 = baselining.build_baseline(session, MODEL, "disk", actor="alice", reason="first")
    assert v1 is not None
    assert v1.bands["write 1MiB qd8"] == {
        "median": 100.0,
        "mad": 2.0,
        "low": 90.0,
        "high": 110.0,
        "unit": "IOPS",
    }
    add_run(session, "ok6", 130.0)
    v2 = baselining.build_baseline(session, MODEL, "disk", actor="bob", reason="new disks")
    assert v2 is not None
    session.refresh(v1)
    assert (v1.version, v1.active, v2.version, v2.active) == (1, False, 2, True)
    assert (v2.samples, v2.built_by, v2.reason) == (6, "bob", "new disks")
    assert repository.active_baseline(session, MODEL, "disk") == v2
    assert repository.list_baselines(session, model=MODEL) == [v2]
    assert repository.list_baselines(session, model=MODEL, history=True) == [v2, v1]
    assert baselining.to_baseline(v2).bands["write 1MiB qd8"].median == 101.0
    assert service.baseline_json(v1)["bands"] == v1.bands


def test_only_quiet_recent_healthy_in_service_results_feed_a_baseline(session: Session) -> None:
    five_healthy(session)
    expected = {r.hostname: r.id for r in session.scalars(select(ProbeRun))}
    add_run(session, "busy", 10.0, load=BUSY)  # a busy machine proves nothing
    add_run(session, "verifying", 10.0, state="verifying")  # not yet trusted
    add_run(session, "old", 10.0, days_ago=31)
    add_run(session, "broken", 10.0, status="error")
    add_run(session, "unknown load", 10.0).load = {}  # no proof the machine was quiet
    add_run(session, "failed", 100.0, status="pass")
    add_run(session, "failed", 10.0, status="fail")  # its latest result failed
    # the latest quiet result counts, not a later busy one
    quiet = add_run(session, "quiet", 99.0)
    add_run(session, "quiet", 10.0, load=BUSY)
    expected["quiet"] = quiet.id
    runs = baselining.healthy_runs(session, MODEL, "disk")
    assert {r.hostname: r.id for r in runs} == expected
    row = baselining.build_baseline(session, MODEL, "disk", actor="alice", reason="")
    assert row is not None
    assert sorted(row.source_runs) == sorted(expected.values())
    # a lab whose machines are never idle can accept its busy results
    relaxed = LoadLimits(busy_load=1.0)
    assert "busy" in {
        r.hostname for r in baselining.healthy_runs(session, MODEL, "disk", limits=relaxed)
    }


def test_a_baseline_needs_five_hosts(session: Session) -> None:
    for i in range(4):
        add_run(session, "same", 100.0 + i)  # one host measured four times counts once
    add_run(session, "other", 100.0)
    assert len(baselining.healthy_runs(session, MODEL, "disk")) == 2
    assert baselining.build_baseline(session, MODEL, "disk", actor="a", reason="") is None
    assert session.scalars(select(BaselineRow)).all() == []


# --- queries -------------------------------------------------------------------------------------


def test_queries_and_outliers(session: Session) -> None:
    five_healthy(session)
    host = HostInfo("h006", None, MODEL, "verifying")
    service.record(session, host, measured(50.0))
    latest_slow, _ = service.record(session, host, measured(50.0))
    low, _ = service.record(session, HostInfo("h007", None, MODEL, "in_service"), measured(92.0))
    rows, total = repository.query_results(session, hostname="h006")
    assert (total, rows[0].id) == (2, latest_slow.id)
    rows, total = repository.query_results(session, status="fail", latest=True)
    assert [r.id for r in rows] == [latest_slow.id]
    assert repository.query_results(session, model="other")[1] == 0
    assert len(repository.latest_results(session, probe="disk")) == 7
    assert low.status == "pass"
    assert repository.outliers(session) == [latest_slow]
    assert repository.outliers(session, margin=0.05) == [latest_slow, low]
    shown = service.result_json(latest_slow, repository.active_baseline(session, MODEL, "disk"))
    assert (shown["lowest_point"], shown["lowest_ratio"]) == ("randread 4KiB qd32", 0.5)
    assert shown["baseline"]["version"] == 1
    with pytest.raises(InspectionNotFound, match="no inspection result 999"):
        repository.get_result(session, 999)


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="needs iperf3 (apt-get install iperf3)")
def test_the_network_probe_measures_against_an_iperf3_server_and_builds_a_baseline(
    engine: Engine, session: Session, iperf3_server: int
) -> None:
    for i in range(1, 7):
        add_host(session, f"h{i:03d}")
    session.commit()
    server = f"127.0.0.1:{iperf3_server}"
    for i in range(1, 6):
        done = act(
            engine, f"h{i:03d}", probes="network", quick=True, iperf_server=server, record_only=True
        )
        assert done.exit_code == 0, done
    runs = session.scalars(select(ProbeRun).where(ProbeRun.probe == "network")).all()
    assert len(runs) == 5
    assert all(set(r.points) == {"send Gbit/s", "receive Gbit/s"} for r in runs)
    assert all(v > 0 for r in runs for v in r.points.values())
    session.commit()
    # this shared box is busy by judge's limits: accept any load for this baseline
    relaxed = LoadLimits(busy_load=1e9, busy_cpu=1.0, busy_steal=1.0)
    built = baselining.build_baseline(
        session, MODEL, "network", actor="test", reason="test", limits=relaxed
    )
    assert built is not None
    assert set(built.bands) == {"send Gbit/s", "receive Gbit/s"}
    session.commit()

    act(engine, "h006", probes="network", quick=True, iperf_server=server)
    last = session.scalars(select(ProbeRun).order_by(ProbeRun.id.desc())).first()
    assert last is not None
    assert (last.hostname, last.probe) == ("h006", "network")
    assert last.status in ("pass", "inconclusive"), last.reasons  # no speed asserted here
    if last.status == "pass":
        assert last.baseline_id == built.id
        assert set(last.ratios) == {"send Gbit/s", "receive Gbit/s"}

    missing = act(engine, "h006", probes="network")
    assert missing.exit_code is None
    assert missing.error.startswith("the network probe measures against an iperf3 server")
