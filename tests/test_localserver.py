"""The local API server that local commands start once and reuse: real processes, a real Unix
socket, real databases."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import cli_env, cli_ok, run_cli


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user whose local commands persist a server, in a runtime directory of the test's own;
    every server started there is stopped afterwards."""
    runtime = Path(tempfile.mkdtemp(prefix="run-"))  # short: a socket path fits 108 bytes
    environment = cli_env(
        f"sqlite:///{tmp_path / 'fleet.db'}",
        tmp_path,
        FLEETOPS_CLI_PERSIST_SECONDS="600",
        XDG_RUNTIME_DIR=str(runtime),
    )
    yield environment
    for sock in (runtime / "fleetops").glob("*.sock"):
        pid = _peer_pid(sock)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(runtime)


AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
SYSTEM_PYTHON = "/usr/bin/python3"  # one any user may run (the suite's may sit in root's home)


def _peer_pid(path: Path) -> int | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return None
        creds = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[:4], "little")


def _gone(pid: int, wait: float = 20) -> bool:
    """Whether the process has exited (a zombie nobody reaped counts: it runs nothing)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def _servers(env: dict[str, str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(cli_ok(env, "local", "status", "-o", "json"))
    return rows


def _add_host(env: dict[str, str], name: str) -> None:
    inventory = Path(env["FLEETOPS_DATA_DIR"]) / f"{name}.yaml"
    inventory.write_text(f"hosts:\n  - hostname: {name}\n")
    cli_ok(env, "host", "import", str(inventory))


def test_the_first_local_command_starts_a_server_the_next_ones_reuse(
    env: dict[str, str],
) -> None:
    _add_host(env, "h001")
    [first] = _servers(env)
    listed = json.loads(cli_ok(env, "host", "list", "-o", "json"))
    assert [h["hostname"] for h in listed["items"]] == ["h001"]
    assert _servers(env) == [first]  # the same process answered
    audit = json.loads(cli_ok(env, "audit", "list", "-o", "json"))
    assert any(row["actor"].startswith("local:") for row in audit["items"])

    folder = Path(str(first["socket"])).parent
    assert folder.stat().st_mode & 0o777 == 0o700
    assert Path(str(first["socket"])).stat().st_mode & 0o777 == 0o600


def test_another_database_gets_its_own_server_and_a_recreated_file_a_fresh_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    _add_host(env, "h001")
    other = {**env, "FLEETOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"}
    assert json.loads(cli_ok(other, "host", "list", "-o", "json"))["items"] == []
    assert len(_servers(env)) == 2

    for name in ("fleet.db", "fleet.db-wal", "fleet.db-shm"):  # as a demo replaces its own
        (tmp_path / name).unlink(missing_ok=True)
    assert json.loads(cli_ok(env, "host", "list", "-o", "json"))["items"] == []


def test_a_killed_server_is_replaced_by_the_next_command(env: dict[str, str]) -> None:
    _add_host(env, "h001")
    [before] = _servers(env)
    os.kill(int(str(before["pid"])), signal.SIGKILL)
    time.sleep(0.2)
    listed = json.loads(cli_ok(env, "host", "list", "-o", "json"))
    assert [h["hostname"] for h in listed["items"]] == ["h001"]
    [after] = _servers(env)
    assert after["pid"] != before["pid"]
    assert after["socket"] == before["socket"]


def test_an_idle_server_exits_and_removes_its_socket(env: dict[str, str]) -> None:
    brief = {**env, "FLEETOPS_CLI_PERSIST_SECONDS": "1"}
    _add_host(brief, "h001")
    [server] = _servers(brief)
    deadline = time.monotonic() + 20
    while Path(str(server["socket"])).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(str(server["socket"])).exists()
    assert _gone(int(str(server["pid"])))


def test_stop_ends_every_server_and_the_next_command_starts_one(env: dict[str, str]) -> None:
    _add_host(env, "h001")
    [server] = _servers(env)
    result = run_cli(env, "local", "stop")
    assert result.returncode == 0
    assert "stopped 1" in result.stderr
    assert _gone(int(str(server["pid"])), wait=0.5)
    assert "h001" in cli_ok(env, "host", "list")


def test_a_server_that_cannot_start_says_why(env: dict[str, str]) -> None:
    broken = {**env, "FLEETOPS_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none"}
    result = run_cli(broken, "host", "list")
    assert result.returncode == 1
    assert "the local API server did not start" in result.stderr
    assert "127.0.0.1" in result.stderr
    assert "9" in result.stderr


def test_another_user_is_refused_even_with_the_socket_opened_to_them(
    env: dict[str, str],
) -> None:
    if not os.access(SYSTEM_PYTHON, os.X_OK) or os.getuid() != 0:
        pytest.skip(f"needs root and {SYSTEM_PYTHON} to connect as another user")
    _add_host(env, "h001")
    [server] = _servers(env)
    path = Path(str(server["socket"]))
    path.parent.parent.chmod(0o711)  # the runtime directory the test made
    path.parent.chmod(0o711)  # as if a careless admin opened the directory and the socket
    path.chmod(0o666)
    try:
        asked = (
            "import socket\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            f"s.connect({str(path)!r})\n"
            "try:\n"
            "    s.sendall(b'GET /api/v1/hosts HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
            "    print(repr(s.recv(65536)))\n"
            "except (ConnectionResetError, BrokenPipeError):\n"
            "    print('reset')\n"
        )
        nobody = subprocess.run(
            [*AS_NOBODY, SYSTEM_PYTHON, "-c", asked],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert nobody.returncode == 0, nobody.stderr
        assert nobody.stdout.strip() in ("b''", "reset"), nobody.stdout  # closed, nothing answered
        assert "h001" not in nobody.stdout
        # and the owner's own commands no longer trust that directory: they run in-process
        result = run_cli(env, "host", "list")
        assert result.returncode == 0
        assert "h001" in result.stdout
    finally:
        path.parent.chmod(0o700)
