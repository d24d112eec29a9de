"""Built-in actions against real executors, a real HTTP server and, for ansible, real ansible."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fleetops.adapters.local import LocalExecutor
from fleetops.changes.actions import ACTIONS, BOOT_ID_COMMAND, run_action
from fleetops.changes.executor import Result, Target
from fleetops.sim.executor import SimulatedExecutor
from tests.fixtures.sshd import SshServer, free_port

pytestmark = pytest.mark.anyio

NO_HOST_KEY_CHECKS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
ANSIBLE_PLAYBOOK = Path(__file__).resolve().parents[2] / "bench/.venv-ansible/bin/ansible-playbook"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = {"/health": (200, b"status: ok")}.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def web() -> Iterator[int]:
    """A real HTTP server on 127.0.0.1; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def test_wait_sleeps_without_touching_the_host() -> None:
    sim = SimulatedExecutor()
    result = await run_action("wait", sim, Target("h1"), {"seconds": 0.2}, timeout=5)
    assert result.ok
    assert result.duration_s >= 0.2
    assert sim.commands("h1") == []
    too_long = await run_action("wait", sim, Target("h1"), {"seconds": 60}, timeout=0.1)
    assert too_long.exit_code is None
    assert too_long.error == "timeout after 0.1 s"


async def test_file_put_writes_through_the_executor(tmp_path: Path) -> None:
    path = tmp_path / "limits.conf"
    params = {"path": str(path), "content": "nofile 65536\n", "mode": "0640"}
    result = await run_action("file_put", LocalExecutor(), Target("h1"), params, timeout=5)
    assert result.ok
    assert path.read_text() == "nofile 65536\n"
    assert path.stat().st_mode & 0o777 == 0o640


async def test_http_check_passes_and_fails_on_real_responses(web: int) -> None:
    target = Target("web1", address="127.0.0.1")
    url = f"http://{{host}}:{web}"
    ex = SimulatedExecutor()

    ok = await run_action("http_check", ex, target, {"url": f"{url}/health"}, timeout=5)
    assert ok.ok
    assert ok.stdout == f"GET http://127.0.0.1:{web}/health -> 200\n"

    params = {"url": f"{url}/health", "contains": "status: ok", "expect_status": "200"}
    assert (await run_action("http_check", ex, target, params, timeout=5)).ok

    wrong_text = {"url": f"{url}/health", "contains": "degraded"}
    failed = await run_action("http_check", ex, target, wrong_text, timeout=5)
    assert failed.exit_code == 1
    assert "body lacks 'degraded'" in failed.stderr

    missing = await run_action("http_check", ex, target, {"url": f"{url}/nope"}, timeout=5)
    assert missing.exit_code == 1
    assert "-> 404" in missing.stderr
    assert "expected 200" in missing.stderr
    assert ex.commands("web1") == []  # checked from fleetops, not on the host


async def test_http_check_on_a_closed_port_fails() -> None:
    url = f"http://{{host}}:{free_port()}/health"
    result = await run_action(
        "http_check", SimulatedExecutor(), Target("web1", "127.0.0.1"), {"url": url}, timeout=5
    )
    assert result.exit_code == 1
    assert "GET http://127.0.0.1:" in result.stderr


async def test_reboot_on_the_simulated_fleet() -> None:
    sim = SimulatedExecutor(seed=2, reboot_s=0.3)
    host = Target("dn-001")
    params = {"poll_interval": 0.05}
    result = await run_action("reboot", sim, host, params, timeout=10)
    assert result.ok, result
    old, new = result.stdout.removeprefix("rebooted: boot id ").strip().split(" -> ")
    assert old != new
    commands = sim.commands("dn-001")
    assert commands[0] == BOOT_ID_COMMAND
    assert "reboot" in commands[1]
    assert result.duration_s >= 0.3  # it waited for the host to come back


class BootIds:
    """A stub host whose boot id reads follow a script; a real reboot is impossible in tests."""

    name = "stub"

    def __init__(self, reads: list[Result], reboot: Result | None = None) -> None:
        self.reads = reads
        self.reboot = reboot or Result(exit_code=0)
        self.commands: list[str] = []

    async def run(
        self, target: Target, command: str, *, timeout: float, stdin: str | None = None
    ) -> Result:
        self.commands.append(command)
        if command != BOOT_ID_COMMAND:
            return self.reboot
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]

    async def put_file(
        self, target: Target, path: str, content: bytes, *, mode: int = 0o644, timeout: float
    ) -> Result:
        raise NotImplementedError

    async def close(self) -> None:
        pass


def boot(boot_id: str) -> Result:
    return Result(exit_code=0, stdout=f"{boot_id}\n")


DOWN = Result(exit_code=None, error="unreachable: h1:22: connection refused")


async def test_reboot_polls_through_downtime_until_a_new_boot_id() -> None:
    stub = BootIds([boot("a"), boot("a"), DOWN, DOWN, boot("b")])
    result = await run_action("reboot", stub, Target("h1"), {"poll_interval": 0.01}, timeout=5)
    assert result.ok
    assert result.stdout == "rebooted: boot id a -> b\n"
    assert stub.commands.count(BOOT_ID_COMMAND) == 5


async def test_reboot_that_never_comes_back_times_out_with_the_reason() -> None:
    stub = BootIds([boot("a"), DOWN])
    start = time.monotonic()
    result = await run_action("reboot", stub, Target("h1"), {"poll_interval": 0.05}, timeout=0.4)
    assert result.exit_code is None
    assert result.error.startswith("timeout after 0.4 s: no new boot id")
    assert "connection refused" in result.error
    assert time.monotonic() - start < 1.0


async def test_reboot_refused_by_the_host_stops_at_once() -> None:
    denied = Result(exit_code=1, stderr="Failed to reboot: access denied\n")
    stub = BootIds([boot("a")], reboot=denied)
    result = await run_action("reboot", stub, Target("h1"), {"poll_interval": 5}, timeout=60)
    assert result.exit_code == 1
    assert result.error == "reboot refused"
    assert "access denied" in result.stderr


async def test_ansible_missing_is_a_clear_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ansible-playbook anywhere
    params = {"playbook": "site.yml", "extra_vars": {}}
    result = await run_action("ansible_playbook", LocalExecutor(), Target("h1"), params, timeout=5)
    assert result.exit_code is None
    assert "install ansible-core" in result.error


@pytest.mark.slow
@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="run bench/fanout.py to install ansible")
async def test_ansible_playbook_runs_against_a_real_host(sshd: SshServer, tmp_path: Path) -> None:
    out = tmp_path / "from-ansible.txt"
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - copy: {content: '{{ greeting }}', dest: '" + str(out) + "'}\n"
    )
    params = {
        "playbook": str(playbook),
        "ansible_playbook": str(ANSIBLE_PLAYBOOK),
        "private_key": str(sshd.key_path),
        "extra_vars": {
            "greeting": "hello from h007",
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_common_args": NO_HOST_KEY_CHECKS,
            "ansible_ssh_args": "-o ControlMaster=no",  # no master left running afterwards
        },
    }
    host = sshd.hosts(7)[6]
    result = await run_action("ansible_playbook", LocalExecutor(), host, params, timeout=120)
    assert result.ok, result.stdout[-2000:]
    assert out.read_text() == "hello from h007"
    assert "h007" in result.stdout
    vars_files = Path(tempfile.gettempdir()).glob("fleetops-vars-*.json")
    assert [p for p in vars_files if "hello from h007" in p.read_text()] == []  # removed


async def test_unknown_action_and_missing_parameter_are_workflow_errors() -> None:
    sim = SimulatedExecutor()
    with pytest.raises(ValueError, match="known actions: wait, file_put, http_check"):
        await run_action("format_disk", sim, Target("h1"), {}, timeout=5)
    with pytest.raises(ValueError, match="needs the parameter 'url'"):
        await run_action("http_check", sim, Target("h1"), {}, timeout=5)
    assert ACTIONS == (
        "wait", "file_put", "http_check", "reboot", "ansible_playbook", "inspect_hardware"
    )  # fmt: skip


async def test_a_served_action_runs_only_where_the_server_provides_it() -> None:
    sim = SimulatedExecutor()
    alone = await run_action("inspect_hardware", sim, Target("h1"), {}, timeout=5)
    assert alone.exit_code is None
    assert alone.error == (
        "inspect_hardware needs the inspection service, which runs in `fleetops serve`: "
        "run it as a step of a change"
    )
    seen: list[tuple[str, dict[str, object]]] = []

    async def handler(executor: Any, target: Target, params: Any, timeout: float) -> Result:
        seen.append((target.hostname, dict(params)))
        return Result(exit_code=0, stdout="inspected\n")

    served = await run_action(
        "inspect_hardware",
        sim,
        Target("h1"),
        {"probes": "cpu"},
        timeout=5,
        served={"inspect_hardware": handler},
    )
    assert (served.exit_code, served.stdout) == (0, "inspected\n")
    assert seen == [("h1", {"probes": "cpu"})]
