"""Durable execution: a rollout survives repeated SIGKILLs of the server.

Each host's operation appends one line to its own file and has a `check` that looks for the line.
Whatever moment the server dies at, after restarts every file holds exactly one line.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.changes.fleet import approve, fleet_doc, load_fleet, wait_for, workflow
from tests.fixtures.app import seed_users
from tests.fixtures.server import cli_env, free_port

KILLS = 10


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetops", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: _healthy(port) or proc.poll() is not None, timeout=60, what="server start")
    assert proc.poll() is None, log.read_text()[-2000:]
    return proc


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_rollout_survives_sigkills(
    db_url: str, tmp_path: Path, ops_dir: Path, work_dir: Path
) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, fleet_doc(50, 5))
    env = cli_env(
        db_url,
        tmp_path / "data",
        FLEETOPS_OPERATIONS_DIR=str(ops_dir),
        FLEETOPS_EXECUTOR="local",
        FLEETOPS_ENGINE_TICK_SECONDS="0.05",
        FLEETOPS_BUDGET_RACK="1",
        FLEETOPS_BUDGET_CLUSTER="1",
    )
    port, log = free_port(), tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    dev = users.headers("developer")
    proc = _start(env, port, log)
    assert (
        httpx.post(
            f"{url}/api/v1/workflows", json={"source": workflow(batch="10%")}, headers=dev
        ).status_code
        == 201
    )
    body = {
        "workflow": "append",
        "selector": "all",
        "title": "chaos",
        "params": {"dir": str(work_dir), "hold": 0.15},
    }
    response = httpx.post(f"{url}/api/v1/changes", json=body, headers=dev)
    assert response.status_code == 201, response.text
    cid = response.json()["id"]
    approve(lambda path, **kw: httpx.post(f"{url}{path}", **kw), users, response.json())
    rng = random.Random(20261126)
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.05, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc = _start(env, port, log)
    try:
        change = wait_for(
            lambda: (
                (c := httpx.get(f"{url}/api/v1/changes/{cid}", headers=dev).json())["state"]
                in ("succeeded", "failed", "paused")
                and c
            ),
            timeout=120,
            what="the end",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert change["state"] == "succeeded", change["status"]
    files = sorted(work_dir.iterdir())
    assert len(files) == 50
    for path in files:
        assert path.read_text() == f"{cid}\n", path.name
