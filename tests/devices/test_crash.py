"""Acceptance: `kill -9` of the server in the middle of an isolation, and of a verification.

The isolation and verification workflows here hold each host for a while (an operation that
appends the change id to the host's own file, then waits), so the kill lands while the change runs.
Right after each kill the database is consistent (the device names its running change); after a
restart the engine finishes the change, the device follows it, and every side effect happened
exactly once: one line per host file, one isolation change, one ticket.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fleetops.changes.standard import digest_of
from fleetops.db import make_engine, make_session_factory
from fleetops.models import ChangeRequest, DeviceState, Host, RepairTicket
from tests.changes.fleet import fleet_doc, load_fleet, wait_for, write_ops
from tests.changes.test_chaos import _start
from tests.devices.factory import hardware_findings
from tests.fixtures.app import Tokens, seed_users
from tests.fixtures.server import cli_env, free_port

pytestmark = pytest.mark.slow
HOST = "h003"


def slow_workflow(name: str, work_dir: Path, last_step: str) -> str:
    """A device workflow that writes its mark, holds the host three seconds, then does its job."""
    return f"""
name: {name}
version: 1
description: {name} that takes its time
stages:
  - name: main
    steps:
      - operation: append_line
        params: {{dir: "{work_dir}"}}
      - operation: wait
        params: {{seconds: 3}}
      - operation: {last_step}
    strategy: {{batch: 1, max_failures: 0, on_failure: abort}}
"""


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = _start(self.env, self.port, self.log)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def get(self, path: str, users: Tokens, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}", params=params, headers=users.headers("viewer"), timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def ops_dir(tmp_path: Path) -> Path:
    return write_ops(tmp_path / "ops")


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.mkdir()
    return path


@pytest.fixture
def server(db_url: str, tmp_path: Path, ops_dir: Path) -> Iterator[Server]:
    env = cli_env(
        db_url,
        tmp_path / "data",
        FLEETOPS_OPERATIONS_DIR=str(ops_dir),
        FLEETOPS_EXECUTOR="local",
        FLEETOPS_ENGINE_TICK_SECONDS="0.05",
        FLEETOPS_HEALTH_POLICY_ENABLED="true",
        FLEETOPS_HEALTH_POLICY_INTERVAL="0.3",
    )
    running = Server(env, tmp_path / "server.log")
    yield running
    if running.proc is not None and running.proc.poll() is None:
        running.kill()


def database(db_url: str) -> tuple[str, str | None, int, int]:
    """The device's state, its change's state, and how many changes and tickets it has."""
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        row = session.execute(
            select(DeviceState.state, ChangeRequest.state)
            .join(Host, Host.id == DeviceState.host_id)
            .outerjoin(ChangeRequest, ChangeRequest.id == DeviceState.change_id)
            .where(Host.hostname == HOST)
        ).one()
        changes = session.scalar(
            select(func.count()).select_from(ChangeRequest).where(ChangeRequest.selector == HOST)
        )
        tickets = session.scalar(select(func.count()).select_from(RepairTicket))
    engine.dispose()
    return row[0], row[1], changes or 0, tickets or 0


def test_sigkill_mid_isolation_and_mid_verification(
    server: Server, db_url: str, work_dir: Path
) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, fleet_doc(10, 2))
    sources = {
        "ISOLATION": slow_workflow("slow-isolate", work_dir, "drain_host"),
        "VERIFICATION": slow_workflow("slow-verify", work_dir, "undrain_host"),
    }
    # Pinned in the settings, as a site pins its own device workflows: their changes run
    # pre-approved only while the registered source is exactly this one.
    for setting, source in sources.items():
        name = "slow-isolate" if setting == "ISOLATION" else "slow-verify"
        server.env[f"FLEETOPS_{setting}_WORKFLOW"] = f"{name}@1#{digest_of(source)}"
    server.start()
    dev = users.headers("developer")
    for source in sources.values():
        answer = httpx.post(f"{server.url}/api/v1/workflows", json={"source": source}, headers=dev)
        assert answer.status_code == 201, answer.text
    mark = work_dir / HOST

    hardware_findings(db_url, HOST)
    # Kill while the drain change holds the host: its mark is written, the change still runs.
    wait_for(lambda: mark.exists(), what="the isolation change to start on the host")
    server.kill()
    assert database(db_url) == ("draining", "running", 1, 0)
    server.start()
    device = wait_for(
        lambda: (d := server.get(f"/api/v1/devices/{HOST}", users))["state"] == "isolated" and d,
        what="isolation after the restart",
    )
    assert device["change_id"] is None
    assert database(db_url) == ("isolated", None, 1, 1)
    assert mark.read_text().splitlines() == ["1"]  # the op ran once: its check saw the line

    [ticket] = server.get("/api/v1/repairs", users)["items"]
    answer = httpx.post(
        f"{server.url}/api/v1/repairs/{ticket['id']}/status",
        json={"status": "repaired"},
        headers=users.headers("operator"),
    )
    assert answer.status_code == 200, answer.text
    verify_id = server.get(f"/api/v1/devices/{HOST}", users)["change_id"]
    wait_for(
        lambda: mark.read_text().splitlines() == ["1", str(verify_id)],
        what="the verification change to start on the host",
    )
    server.kill()
    assert database(db_url)[:2] == ("verifying", "running")
    server.start()
    back = wait_for(
        lambda: (d := server.get(f"/api/v1/devices/{HOST}", users))["state"] == "in_service" and d,
        what="return to service after the restart",
    )
    assert back["probation_until"] is not None
    assert mark.read_text().splitlines() == ["1", str(verify_id)]
    assert server.get(f"/api/v1/repairs/{ticket['id']}", users)["status"] == "verified"
    assert database(db_url) == ("in_service", None, 2, 1)
