"""The check operations run for real, locally and over SSH: each passes, and fails with one line
saying what it expected and what it found."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fleetops.adapters.local import LocalExecutor
from fleetops.adapters.ssh import SshConfig, SshExecutor
from fleetops.changes.executor import Executor, Result, Target
from fleetops.changes.operations import SpecError, load_library, validate_params
from fleetops.changes.templating import HostFacts, operation_context, render
from tests.fixtures.sshd import SshServer, free_port

pytestmark = pytest.mark.anyio

CHECKS = (
    "service_active",
    "process_running",
    "version_equals",
    "file_checksum",
    "port_open",
    "command_output",
    "http_check",
)
LIBRARY = load_library()
SYSTEMD = Path("/run/systemd/system").is_dir()
VIA = "systemctl" if SYSTEMD else "service status, no systemd"
ME = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Host:
    executor: Executor
    target: Target


@pytest.fixture(params=["local", "ssh"])
async def host(request: pytest.FixtureRequest) -> AsyncIterator[Host]:
    """This machine, reached by a local process or over SSH to the loopback sshd."""
    if request.param == "local":
        found = Host(LocalExecutor(), Target("localhost"))
    else:
        server: SshServer = request.getfixturevalue("sshd")
        config = SshConfig(key_path=server.key_path, known_hosts=server.known_hosts)
        found = Host(SshExecutor(config), server.hosts(1)[0])
    yield found
    await found.executor.close()


def command_for(name: str, /, **given: Any) -> str:
    """The operation's run phase rendered as the engine renders it, params validated first."""
    spec = LIBRARY.get(name)
    assert spec is not None
    values = validate_params(spec.params, given)
    context = operation_context(
        values, host=HostFacts(hostname="localhost"), change_id=1, timeout=spec.timeout
    )
    call = spec.run.resolve({})
    assert isinstance(call, str)
    return render(call, context)


async def check(host: Host, name: str, /, **given: Any) -> Result:
    spec = LIBRARY.get(name)
    assert spec is not None
    command = command_for(name, **given)
    return await host.executor.run(host.target, command, timeout=spec.timeout)


def passed(result: Result) -> str:
    assert result.ok, (result.exit_code, result.error, result.stderr)
    assert result.stderr == ""
    return result.stdout.strip()


def failed(result: Result, *, code: int = 1) -> str:
    """The one line a failed check printed on stderr."""
    assert result.exit_code == code, (result.exit_code, result.error, result.stdout)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# These run the command they are given: reviewed like a shell command, not waved through.
RUNS_A_COMMAND = {"command_output", "version_equals"}


def test_every_check_loads_as_a_check_without_side_phases() -> None:
    for name in CHECKS:
        spec = LIBRARY.get(name)
        assert spec is not None, name
        risk = "medium" if name in RUNS_A_COMMAND else "read_only"
        assert (spec.kind, spec.risk, spec.idempotent) == ("check", risk, True), name
        assert (spec.check, spec.verify, spec.rollback) == (None, None, None), name
        assert spec.timeout <= 120, name


# --- service_active -----------------------------------------------------------------------------


@pytest.mark.skipif(
    not SYSTEMD and not Path("/etc/init.d/postgresql").exists(),
    reason="no systemd and no postgresql init script: no service here to check",
)
async def test_service_active_on_the_running_postgresql(host: Host) -> None:
    # PostgreSQL runs for the database tests; without systemd this takes the `service` path.
    assert passed(await check(host, "service_active", name="postgresql")) == (
        f"postgresql: active ({VIA})"
    )
    line = failed(await check(host, "service_active", name="postgresql", state="inactive"))
    assert line == f"postgresql: expected inactive, found active ({VIA})"


async def test_service_active_on_a_service_that_does_not_exist(host: Host) -> None:
    line = failed(await check(host, "service_active", name="fleetops-no-such-service"))
    found = "inactive" if SYSTEMD else "no such service"
    assert line == f"fleetops-no-such-service: expected active, found {found} ({VIA})"


# --- process_running ----------------------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[str]:
    """A real `sleep` with a unique duration; yields a pattern matching only it (and itself)."""
    seconds = f"300.{secrets.randbelow(10**9):09d}"
    proc = subprocess.Popen(["sleep", seconds])
    yield f"sleep {seconds}"  # unescaped: the check's own command line matches it too
    proc.kill()
    proc.wait()


async def test_process_running_counts_the_real_process_and_not_itself(
    host: Host, sleeper: str
) -> None:
    assert passed(await check(host, "process_running", pattern=sleeper)).endswith(": 1")
    assert passed(await check(host, "process_running", pattern=sleeper, user=ME))
    line = failed(await check(host, "process_running", pattern=sleeper, min_count=2))
    assert line == f"processes matching {sleeper}: expected at least 2, found 1"
    line = failed(await check(host, "process_running", pattern=sleeper, user="nobody"))
    assert line == f"processes matching {sleeper} of user nobody: expected at least 1, found 0"


async def test_process_running_fails_when_nothing_matches(host: Host) -> None:
    # The pattern matches the check's own command line (and the SSH session's): those don't count.
    pattern = f"sleep 300.{secrets.token_hex(6)}"
    line = failed(await check(host, "process_running", pattern=pattern))
    assert line == f"processes matching {pattern}: expected at least 1, found 0"
    line = failed(await check(host, "process_running", pattern="(unclosed"), code=2)
    assert line.startswith("processes matching (unclosed: cannot count them: regex error")


# --- version_equals -----------------------------------------------------------------------------


def python_version() -> str:
    done = subprocess.run(["/usr/bin/python3", "--version"], capture_output=True, text=True)
    found = re.fullmatch(r"Python (\S+)\n", done.stdout)
    assert found, done.stdout
    return found.group(1)


async def test_version_equals_reads_a_real_version(host: Host) -> None:
    actual = python_version()
    command = "/usr/bin/python3 --version"
    assert passed(await check(host, "version_equals", command=command, expect=actual)) == (
        f"{command}: version {actual}"
    )
    line = failed(await check(host, "version_equals", command=command, expect="1.22.1"))
    assert line == f"{command}: expected version 1.22.1, found {actual}"
    major = actual.split(".")[0]
    given = {"command": command, "expect": major, "regex": "[0-9]+"}  # only the major version
    assert passed(await check(host, "version_equals", **given)) == f"{command}: version {major}"


async def test_version_equals_without_the_program_or_a_version(host: Host) -> None:
    line = failed(await check(host, "version_equals", command="fleetops-no-such -v", expect="1.0"))
    assert line == "fleetops-no-such -v: expected version 1.0, found no such command (exit 127)"
    line = failed(await check(host, "version_equals", command="echo nginx", expect="1.0"))
    assert (
        line == "echo nginx: expected version 1.0, found no match for [0-9]+(\\.[0-9]+)+ in: nginx"
    )


# --- file_checksum ------------------------------------------------------------------------------


async def test_file_checksum_matches_differs_and_misses(host: Host, tmp_path: Path) -> None:
    path = tmp_path / "nginx.conf"
    path.write_bytes(b"worker_processes 4;\n")
    digest = subprocess.run(
        ["sha256sum", str(path)], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    assert passed(await check(host, "file_checksum", path=str(path), sha256=digest.upper())) == (
        f"{path}: sha256 {digest}"
    )
    other = "0" * 64
    line = failed(await check(host, "file_checksum", path=str(path), sha256=other))
    assert line == f"{path}: expected sha256 {other}, found {digest}"
    gone = tmp_path / "missing.conf"
    line = failed(await check(host, "file_checksum", path=str(gone), sha256=digest))
    assert line == f"{gone}: expected sha256 {digest}, found no such file"


# --- port_open ----------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP socket listening on loopback; the check's connection sits in its backlog."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


async def test_port_open_on_a_listener_and_a_closed_port(host: Host, listener: int) -> None:
    out = passed(await check(host, "port_open", port=listener))
    assert out == f"127.0.0.1:{listener}/tcp: accepts connections"
    closed = free_port()  # bound then closed: nothing listens there
    line = failed(await check(host, "port_open", port=closed))
    assert line == (
        f"127.0.0.1:{closed}/tcp: expected a listener accepting connections, "
        "found connection refused"
    )
    line = failed(await check(host, "port_open", port=70000), code=2)
    assert line == "127.0.0.1:70000: the port must be 1 to 65535"


async def test_port_open_without_bash_reads_the_socket_table(listener: int, tmp_path: Path) -> None:
    """A host with no bash cannot connect through /dev/tcp: the check asks `ss` instead."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "ss", "awk", "sed", "tr", "head", "tail"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    local = Host(LocalExecutor(), Target("localhost"))

    async def run(port: int) -> Result:
        script = command_for("port_open", port=port)
        command = f"PATH={shlex.quote(str(tools))} exec sh -c {shlex.quote(script)}"
        return await local.executor.run(local.target, command, timeout=15)

    assert passed(await run(listener)) == (
        f"127.0.0.1:{listener}/tcp: listening (ss; no bash /dev/tcp to connect)"
    )
    closed = free_port()
    assert failed(await run(closed)) == (
        f"127.0.0.1:{closed}/tcp: expected a listener, found none (ss; no bash /dev/tcp to connect)"
    )


# --- http_check (on the host itself) --------------------------------------------------------------


class Web(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {
            "/health": (200, b"status: ok"),
            "/secret": (500, b"token=" + b"s" * 2000),
            "/moved": (302, b""),
        }
        status, body = routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def web() -> Iterator[int]:
    """A real HTTP server on the loopback, which is also where the SSH host is."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Web)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def test_http_check_runs_on_the_host_and_keeps_a_body_only_when_failing(
    host: Host, web: int
) -> None:
    url = f"http://127.0.0.1:{web}"
    assert passed(await check(host, "http_check", url=f"{url}/health")) == (
        f"GET {url}/health -> 200"
    )
    assert passed(await check(host, "http_check", url=f"{url}/health", contains="status: ok"))
    lacks = await check(host, "http_check", url=f"{url}/health", contains="degraded")
    assert lacks.exit_code == 1
    assert lacks.stderr == f"GET {url}/health -> 200: body lacks 'degraded'\nstatus: ok"
    wrong = await check(host, "http_check", url=f"{url}/secret")
    assert wrong.exit_code == 1
    first, body = wrong.stderr.split("\n", 1)
    assert first == f"GET {url}/secret -> 500, expected 200"
    assert body == ("token=" + "s" * 2000)[:512]  # truncated
    moved = await check(host, "http_check", url=f"{url}/moved")
    assert moved.exit_code == 1  # a redirect is an answer, never followed
    assert moved.stderr.startswith(f"GET {url}/moved -> 302, expected 200")
    closed = await check(host, "http_check", url=f"http://localhost:{free_port()}/")
    assert closed.exit_code == 1
    assert closed.stderr.startswith("GET http://localhost:")


async def test_http_check_names_the_host_by_its_inventory_address(web: int) -> None:
    """`{host}` is the address the inventory gives the host, seen from the host itself."""
    local = Host(LocalExecutor(), Target("web1", "127.0.0.1"))
    spec = LIBRARY.get("http_check")
    assert spec is not None
    values = validate_params(spec.params, {"url": f"http://{{host}}:{web}/health"})
    facts = HostFacts(hostname="web1", address="127.0.0.1")
    call = spec.run.resolve({})
    assert isinstance(call, str)
    command = render(call, operation_context(values, host=facts, change_id=1, timeout=30))
    result = await local.executor.run(local.target, command, timeout=30)
    assert passed(result) == f"GET http://127.0.0.1:{web}/health -> 200"


async def test_http_check_without_curl_asks_python(web: int, tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "mktemp", "rm", "head", "tr", "grep"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    (tools / "python3").symlink_to("/usr/bin/python3")  # the system's, as a host has it
    local = Host(LocalExecutor(), Target("localhost"))

    async def run(path: str) -> Result:
        script = command_for("http_check", url=f"http://127.0.0.1:{web}{path}")
        command = f"PATH={shlex.quote(str(tools))} exec sh -c {shlex.quote(script)}"
        return await local.executor.run(local.target, command, timeout=30)

    assert passed(await run("/health")) == f"GET http://127.0.0.1:{web}/health -> 200"
    moved = await run("/moved")
    assert moved.stderr.startswith(f"GET http://127.0.0.1:{web}/moved -> 302, expected 200")


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.5:8080/admin",
        "http://127.0.0.1.nip.io/",
        "http://localhost@169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "file:///etc/shadow",
        "http://localhost:80/ x",
        "gopher://localhost/",
    ],
)
def test_http_check_refuses_any_url_off_the_host(url: str) -> None:
    with pytest.raises(SpecError, match=r"params\.url: .* does not match pattern"):
        command_for("http_check", url=url)


# --- command_output -----------------------------------------------------------------------------


async def test_command_output_regex_contains_and_exit(host: Host) -> None:
    cmd = "echo nginx: configuration file test is successful"
    assert passed(await check(host, "command_output", command=cmd, regex="test is (ok|succ)")) == (
        f"{cmd}: exit 0, matches test is (ok|succ)"
    )
    line = failed(await check(host, "command_output", command=cmd, regex="^worker [0-9]+$"))
    assert line == (
        f"{cmd}: expected output matching ^worker [0-9]+$, "
        "found: nginx: configuration file test is successful"
    )
    assert passed(await check(host, "command_output", command=cmd, contains="successful"))
    line = failed(await check(host, "command_output", command=cmd, contains="failed"))
    assert line.startswith(f"{cmd}: expected output containing failed, found: nginx:")
    assert failed(await check(host, "command_output", command="false")) == (
        "false: expected exit 0, found exit 1"
    )
    assert passed(await check(host, "command_output", command="false", expect_exit=1)) == (
        "false: exit 1"
    )


# --- hostile values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "given", "param"),
    [
        ("service_active", {"name": "x; touch /tmp/pwned"}, "name"),
        ("service_active", {"name": "--user"}, "name"),
        ("command_output", {"command": "true; touch /tmp/pwned"}, "command"),
        ("version_equals", {"command": "nginx -v $(id)", "expect": "1.0"}, "command"),
        ("port_open", {"port": 80, "address": "x;id"}, "address"),
        ("process_running", {"pattern": "nginx", "user": "root;id"}, "user"),
        ("file_checksum", {"path": "/etc/x", "sha256": "abc; id"}, "sha256"),
    ],
)
def test_shell_syntax_in_a_word_param_is_refused(
    name: str, given: dict[str, Any], param: str
) -> None:
    with pytest.raises(SpecError, match=rf"params\.{param}: .* does not match pattern"):
        command_for(name, **given)


async def test_shell_syntax_in_a_free_text_param_is_inert(host: Host, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"x; touch {marker}; $(touch {marker}) `touch {marker}`"
    line = failed(await check(host, "process_running", pattern=hostile))
    assert line == f"processes matching {hostile}: expected at least 1, found 0"
    line = failed(await check(host, "command_output", command="echo ok", contains=hostile))
    assert line == f"echo ok: expected output containing {hostile}, found: ok"
    line = failed(
        await check(host, "version_equals", command="echo 1.0", expect="2.0", regex=hostile)
    )
    assert line == f"echo 1.0: expected version 2.0, found no match for {hostile} in: 1.0"
    assert not marker.exists()
