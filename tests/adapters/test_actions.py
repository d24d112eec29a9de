"""Built-in actions against real executors, a real HTTP server and, for ansible, real ansible."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from fleetops.adapters.local import LocalExecutor
from fleetops.changes.actions import ACTIONS, BOOT_ID_COMMAND, Playbooks, run_action
from fleetops.changes.executor import Result, StepRefused, Target
from fleetops.sim.executor import SimulatedExecutor
from tests.fixtures.sshd import SshServer

pytestmark = pytest.mark.anyio

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")  # the dev extra's, locked


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
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    runner = Playbooks(dirs=(tmp_path,))
    params = {"playbook": "site.yml", "extra_vars": {}}
    result = await run_action(
        "ansible_playbook", LocalExecutor(), Target("h1"), params, timeout=5,
        served={"ansible_playbook": runner.action},
    )  # fmt: skip
    assert result.exit_code is None
    assert "install ansible-core" in result.error


def test_playbooks_come_only_from_their_directories(tmp_path: Path) -> None:
    books, elsewhere = tmp_path / "playbooks", tmp_path / "elsewhere"
    (books / "roles").mkdir(parents=True)
    elsewhere.mkdir()
    (books / "site.yml").write_text("- hosts: all\n")
    (books / "roles" / "web.yml").write_text("- hosts: all\n")
    (elsewhere / "x.yml").write_text("- hosts: all\n  connection: local\n")
    (books / "escape.yml").symlink_to(elsewhere / "x.yml")
    runner = Playbooks(dirs=(books,))
    assert runner.resolve("site.yml") == (books / "site.yml").resolve()
    assert runner.resolve("roles/web.yml") == (books / "roles" / "web.yml").resolve()
    for outside in (
        "roles/../../elsewhere/x.yml",
        str(elsewhere / "x.yml"),
        "escape.yml",
        "no.yml",
    ):
        with pytest.raises(ValueError, match="not a file inside the playbook directories"):
            runner.resolve(outside)
    with pytest.raises(ValueError, match="no playbook directories are configured"):
        Playbooks().resolve("site.yml")


async def test_a_step_with_a_playbook_from_elsewhere_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text("- hosts: all\n  connection: local\n")
    books = tmp_path / "playbooks"
    books.mkdir()
    with pytest.raises(StepRefused, match="not a file inside the playbook directories"):
        await run_action(
            "ansible_playbook", LocalExecutor(), Target("h1"), {"playbook": "../x.yml"},
            timeout=5, served={"ansible_playbook": Playbooks(dirs=(books,)).action},
        )  # fmt: skip


@pytest.mark.parametrize(
    "extra",
    [
        {"ansible_connection": "local"},
        {"ansible_ssh_common_args": "-o ProxyCommand='touch /tmp/pwned'"},
        {"ansible_ssh_executable": "/tmp/evil"},
        {"ansible_host": "127.0.0.1", "ansible_port": 22},
    ],
)
async def test_extra_vars_cannot_move_the_connection(tmp_path: Path, extra: dict[str, Any]) -> None:
    (tmp_path / "site.yml").write_text("- hosts: all\n")
    params = {"playbook": "site.yml", "extra_vars": {"greeting": "hi", **extra}}
    with pytest.raises(StepRefused, match=f"^extra_vars may not set {sorted(extra)[0]}"):
        await Playbooks(dirs=(tmp_path,)).action(LocalExecutor(), Target("h1"), params, 5)


async def test_an_unserved_playbook_step_says_where_it_runs() -> None:
    result = await run_action(
        "ansible_playbook", LocalExecutor(), Target("h1"), {"playbook": "x.yml"}, timeout=5
    )
    assert result.error.startswith("ansible_playbook needs the playbook runner")


@pytest.mark.slow
async def test_ansible_playbook_runs_against_a_real_host(sshd: SshServer, tmp_path: Path) -> None:
    """Through the server's own SSH settings; a templated extra var stays text on the server."""
    out, pwned = tmp_path / "from-ansible.txt", tmp_path / "pwned"
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "site.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - copy: {content: '{{ greeting }} {{ sneaky }}', dest: '" + str(out) + "'}\n"
    )
    runner = Playbooks(
        dirs=(books,),
        key_path=sshd.key_path,
        known_hosts=sshd.known_hosts,
        program=str(ANSIBLE_PLAYBOOK),
    )
    params = {
        "playbook": "site.yml",
        "extra_vars": {
            "greeting": "hello from h007",
            "sneaky": "{{ lookup('pipe', 'touch " + str(pwned) + "') }}",
            "ansible_python_interpreter": "/usr/bin/python3",
        },
    }
    host = sshd.hosts(7)[6]
    result = await runner.action(LocalExecutor(), host, params, 120)
    assert result.ok, (result.error, result.stdout[-2000:])
    assert out.read_text() == "hello from h007 {{ lookup('pipe', 'touch " + str(pwned) + "') }}"
    assert not pwned.exists()  # the lookup was never run on the server
    assert "h007" in result.stdout
    vars_files = Path(tempfile.gettempdir()).glob("fleetops-vars-*")
    assert [p for p in vars_files if "hello from h007" in p.read_text()] == []  # removed


async def test_unknown_action_and_missing_parameter_are_workflow_errors() -> None:
    sim = SimulatedExecutor()
    with pytest.raises(ValueError, match="known actions: wait, file_put, reboot"):
        await run_action("format_disk", sim, Target("h1"), {}, timeout=5)
    with pytest.raises(ValueError, match="needs the parameter 'path'"):
        await run_action("file_put", sim, Target("h1"), {"content": "x"}, timeout=5)
    # No action makes a request from the server: http_check runs on the host.
    assert ACTIONS == ("wait", "file_put", "reboot", "ansible_playbook", "inspect_hardware")


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
