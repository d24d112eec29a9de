"""Every executor keeps the same contract: local processes, SSH to a real sshd, the simulator."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from fleetops.adapters.local import LocalExecutor
from fleetops.adapters.ssh import SshConfig, SshExecutor
from fleetops.changes.executor import MAX_OUTPUT, Executor, Target
from fleetops.sim.executor import SimulatedExecutor
from tests.fixtures.sshd import SshServer, free_port

pytestmark = pytest.mark.anyio

KINDS = ["local", "ssh", "simulated"]


@dataclass
class Harness:
    kind: str
    executor: Executor
    hosts: Callable[[int], list[Target]]

    @property
    def host(self) -> Target:
        return self.hosts(1)[0]

    @property
    def real(self) -> bool:
        """Runs real processes on this machine (so /proc and the file system can be checked)."""
        return self.kind != "simulated"


def ssh_executor(server: SshServer, **changes: Any) -> SshExecutor:
    """An executor for the test sshd; `changes` adjust its SshConfig."""
    config = SshConfig(key_path=server.key_path, known_hosts=server.known_hosts)
    return SshExecutor(replace(config, **changes))


@pytest.fixture(params=KINDS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    kind = request.param
    if kind == "local":
        h = Harness(kind, LocalExecutor(), lambda n: [Target(f"l{i:03d}") for i in range(1, n + 1)])
    elif kind == "ssh":
        server: SshServer = request.getfixturevalue("sshd")
        h = Harness(kind, ssh_executor(server), server.hosts)
    else:
        sim = SimulatedExecutor(seed=7, failure_rate=0.0)
        h = Harness(kind, sim, lambda n: [Target(f"s{i:03d}") for i in range(1, n + 1)])
    yield h
    await h.executor.close()


def processes_running(marker: str) -> list[int]:
    """PIDs whose command line (arguments joined by NUL) contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_echo_output(harness: Harness) -> None:
    result = await harness.executor.run(harness.host, "echo hello", timeout=10)
    assert (result.exit_code, result.stdout, result.stderr, result.error) == (0, "hello\n", "", "")
    assert result.ok
    assert result.duration_s > 0


async def test_non_zero_exit_code_and_stderr(harness: Harness) -> None:
    result = await harness.executor.run(harness.host, "echo oops >&2; exit 3", timeout=10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "", "oops\n")
    assert result.error == ""
    assert not result.ok


async def test_stdin_reaches_the_command(harness: Harness) -> None:
    result = await harness.executor.run(harness.host, "cat", timeout=10, stdin="from stdin\n")
    assert result.stdout == "from stdin\n"


async def test_timeout_stops_the_command(harness: Harness) -> None:
    # Long enough that it cannot end by itself while we look; digits no other test uses.
    marker = f"9.{random.randrange(10**6):06d}"
    start = time.monotonic()
    result = await harness.executor.run(harness.host, f"sleep {marker}; echo late", timeout=0.5)
    assert result.exit_code is None
    assert "timeout" in result.error
    assert result.stdout == ""
    assert time.monotonic() - start < 2.5
    if harness.real:  # the process is gone too, not only our wait for it
        deadline = time.monotonic() + 4  # sshd: the host's own deadline, 1-2 s on
        while processes_running(marker) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert processes_running(marker) == []


async def test_output_is_capped_and_flagged(harness: Harness, tmp_path: Path) -> None:
    path = str(tmp_path / "big.txt")
    assert (await harness.executor.put_file(harness.host, path, b"x" * 100_000, timeout=10)).ok
    result = await harness.executor.run(harness.host, f"cat {path}", timeout=10)
    assert result.exit_code == 0
    assert result.truncated
    assert result.stdout == "x" * MAX_OUTPUT


async def test_invalid_utf8_is_replaced_not_fatal(harness: Harness, tmp_path: Path) -> None:
    path = str(tmp_path / "bytes.bin")
    assert (await harness.executor.put_file(harness.host, path, b"ok \xff\xfe end", timeout=10)).ok
    result = await harness.executor.run(harness.host, f"cat {path}", timeout=10)
    assert result.stdout == "ok \ufffd\ufffd end"


async def test_put_file_then_cat(harness: Harness, tmp_path: Path) -> None:
    path = tmp_path / "etc" / "app.conf"
    path.parent.mkdir()
    content = b"listen = 8080\nworkers = 4\n"
    put = await harness.executor.put_file(harness.host, str(path), content, mode=0o600, timeout=10)
    assert put.ok, put
    assert (await harness.executor.run(harness.host, f"cat {path}", timeout=10)).stdout == (
        content.decode()
    )
    if harness.real:
        assert path.stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == ["app.conf"]  # no temp left
    # Replacing it is atomic too: a second write wins whole.
    assert (await harness.executor.put_file(harness.host, str(path), b"v2\n", timeout=10)).ok
    assert (await harness.executor.run(harness.host, f"cat {path}", timeout=10)).stdout == "v2\n"


async def test_put_file_into_a_missing_directory_fails_cleanly(
    harness: Harness, tmp_path: Path
) -> None:
    if not harness.real:
        pytest.skip("simulated hosts have no directories")
    result = await harness.executor.put_file(
        harness.host, str(tmp_path / "missing" / "f"), b"x", timeout=10
    )
    assert result.exit_code not in (0, None)
    assert "No such file or directory" in result.stderr


async def test_concurrent_commands_over_many_hosts(harness: Harness) -> None:
    hosts = harness.hosts(20)
    jobs = [(hosts[i % 20], f"echo job{i}") for i in range(50)]
    start = time.monotonic()
    results = await asyncio.gather(
        *(harness.executor.run(host, command, timeout=30) for host, command in jobs)
    )
    assert [r.stdout for r in results] == [f"job{i}\n" for i in range(50)]
    assert time.monotonic() - start < 20
    if isinstance(harness.executor, SshExecutor):
        # One connection per host, reused by its later commands, then by a second wave.
        assert harness.executor.connections_opened == 20
        again = await asyncio.gather(*(harness.executor.run(h, "true", timeout=30) for h in hosts))
        assert all(r.ok for r in again)
        assert harness.executor.connections_opened == 20


async def test_unreachable_host_is_a_result(harness: Harness) -> None:
    if harness.kind == "local":
        pytest.skip("this machine is always reachable")
    if isinstance(harness.executor, SimulatedExecutor):
        harness.executor.unreachable.add("down1")
        target = Target("down1")
    else:
        target = Target("down1", address="127.0.0.1", port=free_port())  # nothing listens
    result = await harness.executor.run(target, "true", timeout=10)
    assert result.exit_code is None
    assert result.error.startswith("unreachable")
    put = await harness.executor.put_file(target, "/tmp/x", b"x", timeout=10)
    assert put.exit_code is None
    assert put.error.startswith("unreachable")


async def test_close_then_use_again(harness: Harness) -> None:
    assert (await harness.executor.run(harness.host, "true", timeout=10)).ok
    await harness.executor.close()
    assert (await harness.executor.run(harness.host, "echo back", timeout=10)).stdout == "back\n"
