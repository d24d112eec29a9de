"""What only the SSH executor has: host key policies, logins, its connection pool, log hygiene."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import asyncssh
import pytest

from tests.adapters.test_executor_contract import ssh_executor
from tests.fixtures.sshd import SshServer, known_hosts_lines, write_key

pytestmark = pytest.mark.anyio


def host_key_blob(server: SshServer) -> str:
    return server.host_key_path.with_name(server.host_key_path.name + ".pub").read_text().split()[1]


async def test_strict_refuses_a_host_missing_from_known_hosts(
    sshd: SshServer, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    executor = ssh_executor(sshd, known_hosts=empty, host_key_policy="strict")
    result = await executor.run(sshd.hosts(1)[0], "true", timeout=10)
    await executor.close()
    assert result.exit_code is None
    assert result.error.startswith("unreachable")
    assert "host key" in result.error
    assert executor.connections_opened == 0


async def test_accept_new_records_the_key_then_strict_trusts_it(
    sshd: SshServer, tmp_path: Path
) -> None:
    path = tmp_path / "ssh" / "known_hosts"  # neither the file nor its directory exist yet
    host = sshd.hosts(1)[0]
    executor = ssh_executor(sshd, known_hosts=path, host_key_policy="accept-new")
    assert (await executor.run(host, "true", timeout=10)).ok
    await executor.close()
    (line,) = path.read_text().splitlines()
    assert line.startswith(f"[{host.hostname}]:{sshd.port} ssh-ed25519 ")
    assert line.split()[2] == host_key_blob(sshd)

    strict = ssh_executor(sshd, known_hosts=path, host_key_policy="strict")
    assert (await strict.run(host, "echo trusted", timeout=10)).stdout == "trusted\n"
    await strict.close()


async def test_accept_new_refuses_a_changed_key(sshd: SshServer, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    host = sshd.hosts(1)[0]
    path = tmp_path / "known_hosts"
    path.write_text(known_hosts_lines(other, sshd.port, [host.hostname]))
    before = path.read_text()
    executor = ssh_executor(sshd, known_hosts=path, host_key_policy="accept-new")
    result = await executor.run(host, "true", timeout=10)
    await executor.close()
    assert result.exit_code is None
    assert result.error.startswith("unreachable")
    assert "host key" in result.error
    assert path.read_text() == before  # the new key was not recorded


async def test_insecure_connects_without_known_hosts(sshd: SshServer, tmp_path: Path) -> None:
    executor = ssh_executor(sshd, known_hosts=tmp_path / "none", host_key_policy="insecure")
    assert (await executor.run(sshd.hosts(1)[0], "echo lab", timeout=10)).stdout == "lab\n"
    await executor.close()
    assert not (tmp_path / "none").exists()


async def test_a_wrong_key_is_an_authentication_failure(sshd: SshServer, tmp_path: Path) -> None:
    wrong = tmp_path / "id_wrong"
    write_key(wrong, asyncssh.generate_private_key("ssh-ed25519"))
    executor = ssh_executor(sshd, key_path=wrong)
    result = await executor.run(sshd.hosts(1)[0], "true", timeout=10)
    await executor.close()
    assert result.exit_code is None
    assert result.error.startswith("unreachable")
    assert "authentication failed for user root" in result.error


async def test_a_dropped_connection_is_reopened(sshd: SshServer) -> None:
    host = sshd.hosts(1)[0]
    executor = ssh_executor(sshd)
    assert (await executor.run(host, "true", timeout=10)).ok
    # Kill the sshd process that serves this connection: the parent of `timeout`, our wrapper.
    await executor.run(
        host,
        f'p=$(cut -d" " -f4 /proc/$PPID/stat); [ "$p" != {sshd.pid} ] && kill -9 "$p"',
        timeout=10,
    )
    os.kill(sshd.pid, 0)  # the listening sshd is still there
    result = await executor.run(host, "echo again", timeout=10)
    await executor.close()
    assert result.stdout == "again\n"
    assert executor.connections_opened == 2


async def test_max_connections_bounds_open_connections(sshd: SshServer) -> None:
    executor = ssh_executor(sshd, max_connections=3)
    seen: list[int] = []

    async def sample() -> None:
        while True:
            seen.append(executor.open_connections)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    results = await asyncio.gather(
        *(executor.run(h, "sleep 0.05; echo ok", timeout=30) for h in sshd.hosts(10))
    )
    sampler.cancel()
    await executor.close()
    assert [r.stdout for r in results] == ["ok\n"] * 10
    assert executor.connections_opened == 10  # idle ones were closed to make room
    assert max(seen) == 3
    assert executor.open_connections == 0


async def test_a_timeout_leaves_the_executor_usable(sshd: SshServer) -> None:
    host = sshd.hosts(1)[0]
    executor = ssh_executor(sshd)
    assert "timeout" in (await executor.run(host, "sleep 3", timeout=0.3)).error
    assert (await executor.run(host, "echo fine", timeout=10)).stdout == "fine\n"
    await executor.close()


async def test_commands_stay_out_of_the_logs(
    sshd: SshServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    executor = ssh_executor(sshd)
    result = await executor.run(sshd.hosts(1)[0], "echo s3cr3t-token >/dev/null", timeout=10)
    await executor.close()
    assert result.ok
    assert "Command: <redacted>" in caplog.text  # asyncssh's own INFO line, defused
    assert "s3cr3t-token" not in caplog.text


def test_executors_share_one_log_filter(sshd: SshServer) -> None:
    ssh_executor(sshd)
    ssh_executor(sshd)
    filters = logging.getLogger("asyncssh").filters
    assert len([f for f in filters if type(f).__name__ == "_RedactCommands"]) == 1
