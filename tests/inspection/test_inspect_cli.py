"""`fleetops inspect` and `fleetops baseline` as a user runs them, against a real server whose
engine probes the hosts with the real tools through the local executor."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.models import ProbeRun, utcnow
from tests.changes.fleet import load_fleet, wait_for
from tests.fixtures.app import seed_users
from tests.fixtures.server import cli_env, cli_ok, run_cli, running_server
from tests.inspection.factories import IDLE
from tests.inspection.test_inspect_api import MODEL, lab_fleet

N = os.cpu_count() or 1
CPU_POINTS = ["events/s 1 thread"] + ([] if N == 1 else [f"events/s {N} threads"])


def inspect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, "inspect", *args)


def healthy_cpu_runs(db_url: str, *hosts: str) -> None:
    """Record-only cpu results of quiet in-service hosts, 100 events/s on every point."""
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        for hostname in hosts:
            session.add(
                ProbeRun(
                    hostname=hostname,
                    model=MODEL,
                    probe="cpu",
                    points=dict.fromkeys(CPU_POINTS, 100.0),
                    units=dict.fromkeys(CPU_POINTS, "events/s"),
                    load=dataclasses.asdict(IDLE),
                    status="inconclusive",
                    host_state="in_service",
                    at=utcnow(),
                )
            )
    engine.dispose()


@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("fio", "sysbench")),
    reason="needs fio and sysbench (apt-get install -y fio sysbench)",
)
def test_inspect_and_baseline_commands(db_url: str, tmp_path: Path) -> None:
    env = cli_env(
        db_url,
        tmp_path / "data",
        FLEETOPS_ENGINE_TICK_SECONDS="0.05",
        FLEETOPS_BUDGET_RACK="1",
        FLEETOPS_BUDGET_CLUSTER="1",
        FLEETOPS_LOCAL_EXECUTOR_HOSTS='["h*"]',  # the lab's hosts are this machine
    )
    users = seed_users(db_url)
    load_fleet(db_url, lab_fleet(6))  # executor=local: this machine
    healthy_cpu_runs(db_url, "h002", "h003", "h004", "h005", "h006")
    with running_server(env) as url:
        op = env | {"FLEETOPS_SERVER": url, "FLEETOPS_TOKEN": users.operator}
        viewer = env | {"FLEETOPS_SERVER": url, "FLEETOPS_TOKEN": users.viewer}
        # A probe that cannot run fails its host after the operation's retries (15 s of
        # backoff): that run follows its change while the other commands go on.
        (tmp_path / "file").touch()
        bad_dir = str(tmp_path / "file" / "dir")
        command = ["inspect", "run", "-t", "h002", "--probe", "disk", "--quick"]
        failing = subprocess.Popen(
            [sys.executable, "-m", "fleetops", *command, "--directory", bad_dir],
            env=op,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(
            lambda: json.loads(cli_ok(viewer, "change", "list", "-o", "json"))["total"] == 1,
            what="the failing inspection's change",
        )

        built = cli_ok(op, "baseline", "build", MODEL, "--probe", "cpu", "--reason", "first")
        assert built.strip() == f"baseline {MODEL}/cpu v1 built from 5 hosts, now active"
        shown = cli_ok(viewer, "baseline", "show", MODEL)
        assert f"{MODEL}/cpu v1 (active, 5 hosts, built by operator" in shown
        assert "events/s 1 thread" in shown
        missing = run_cli(viewer, "baseline", "show", MODEL, "--probe", "disk")
        assert (missing.returncode, missing.stderr.split(":")[0]) == (3, "error")
        assert f"model {MODEL} has no disk baseline" in missing.stderr
        few = run_cli(op, "baseline", "build", MODEL, "--probe", "memory")
        assert few.returncode == 4
        assert f"model {MODEL} has 0 healthy results of probe memory, 5 needed" in few.stderr
        refused = run_cli(viewer, "baseline", "build", MODEL, "--probe", "cpu")
        assert refused.returncode == 4

        # a real run on this machine, judged against v1
        ran = inspect(op, "run", "-t", "h001", "--probe", "cpu", "--quick", "--record-only")
        assert ran.returncode == 0, ran.stderr
        assert "change 2 succeeded: 1 succeeded" in ran.stdout
        assert "h001" in ran.stdout
        [result] = json.loads(cli_ok(viewer, "inspect", "show", "--host", "h001", "-o", "json"))[
            "items"
        ]
        assert (result["probe"], result["change_id"], result["host_state"]) == (
            "cpu",
            2,
            "in_service",
        )
        assert set(result["ratios"]) == set(CPU_POINTS)
        assert result["status"] in ("pass", "fail", "inconclusive")
        one = cli_ok(viewer, "inspect", "show", str(result["id"]))
        assert (
            f"h001 ({MODEL}, in_service) cpu {result['status']} on baseline {MODEL}/cpu v1" in one
        )
        assert "% of median" in one
        listed = cli_ok(viewer, "inspect", "show", "--probe", "cpu", "--latest", "-o", "json")
        assert json.loads(listed)["total"] == 6

        # the failing run: exit 1, the reason shown
        out, err = failing.communicate(timeout=120)
        assert failing.returncode == 1, err
        assert "the disk probe (fio) exited" in out
        assert "change 1 paused: 1 failed" in out
        assert "`fleetops change retry 1` to measure again" in out
        errors = json.loads(
            cli_ok(viewer, "inspect", "show", "--status", "error", "--change", "1", "-o", "json")
        )
        assert errors["total"] == 3  # measured three times: the operation retries twice

        # rebuilding keeps the history
        again = cli_ok(
            op,
            "baseline",
            "build",
            MODEL,
            "--probe",
            "cpu",
            "--busy-load",
            "100",
            "--busy-cpu",
            "1",
        )
        # five simulated hosts, and h001's real run unless the hypervisor stole more than 5 %
        # of the CPU while it ran (a busy CI machine): that result is not healthy evidence
        assert re.fullmatch(
            f"baseline {MODEL}/cpu v2 built from [56] hosts, now active; v1 kept in its history",
            again.strip(),
        ), again
        history = json.loads(cli_ok(viewer, "baseline", "show", MODEL, "--history", "-o", "json"))
        assert [(b["version"], b["active"]) for b in history] == [(2, True), (1, False)]

        submitted = inspect(op, "run", "-t", "h003", "--probe", "cpu", "--quick", "--no-wait")
        assert submitted.stdout.strip() == (
            "change 3: approved, inspecting 1 host(s); follow it with `fleetops change logs 3 -f`"
        )
        bad = inspect(op, "run", "-t", "rack=(", "--no-wait")
        assert bad.returncode == 1
        assert "ValidationError: body.selector: Value error, selector error at column 6" in (
            bad.stderr
        )
        assert inspect(op, "run", "-t", "h001", "--probe", "gpu").returncode == 2
        assert inspect(viewer, "run", "-t", "h001", "--no-wait").returncode == 4
