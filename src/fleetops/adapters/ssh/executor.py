"""Run commands on remote hosts over SSH with asyncssh.

One connection per host (hostname, address, port, user), opened on first use and reused: later
commands are sessions multiplexed on it, so a rollout pays one handshake per host, not per step.
Two aliases of one address are two connections: in a real fleet they are two hosts. Past
`max_connections`, the least recently used idle connection is closed, or the caller waits.

A timed-out command must not keep running on the host. The SSH "signal" request cannot be
relied on (OpenSSH refuses it for root logins: "session signalling requires privilege
separation"), so every command runs under coreutils `timeout` on the host, set a little past the
caller's deadline: the host kills the process group itself, even if the connection is gone. Hosts
without `timeout` run the command plainly and only get the signal.

Nothing here raises for a host-side problem: refused, unresolvable, wrong key, failed login and
timeouts all come back as a `Result` with `exit_code=None`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shlex
import signal
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.utils import CryptographyDeprecationWarning

# asyncssh names cryptography's DSA types in its annotations, and recent cryptography warns on
# every such use. Harmless (fleetops never offers DSA keys), so silenced here, for this import only.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

from fleetops.adapters.local.executor import OutputCapture, result_from, timeout_error
from fleetops.changes.executor import Result, Target

log = logging.getLogger(__name__)

HostKeyPolicy = Literal["strict", "accept-new", "insecure"]
Key = tuple[str, str, int, str, str, str]  # hostname, address, port, user, key file, jump host
REMOTE_GRACE_S = 1  # the host's own deadline trails ours, so ours reports the timeout


@dataclass(frozen=True)
class SshConfig:
    """How to reach hosts. `insecure` skips host key checks: for throwaway labs only."""

    key_path: Path | None = None  # None: the default keys (~/.ssh/id_*) and the agent
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts
    host_key_policy: HostKeyPolicy = "strict"
    connect_timeout: float = 10.0
    max_connections: int = 200
    max_sessions: int = 10  # concurrent commands per connection; sshd's MaxSessions default
    username: str = "root"  # for targets that name no user
    keepalive_interval: float = 15.0  # notices a dead connection (a host that went away)
    # sudo's password for hosts that `become` and ask one (theirs, if a target carries one).
    become_password: str = field(default="", repr=False)


class _Unreachable(Exception):
    """A connection could not be opened; the message is the Result's error."""


class _NoSession(Exception):
    """The connection would not open a session: nothing ran, so trying again is safe."""


@dataclass(eq=False)
class _Conn:
    key: Key
    conn: asyncssh.SSHClientConnection
    sessions: asyncio.Semaphore
    users: int = 0  # commands using it now, or about to (it must not be evicted then)
    last_used: float = field(default_factory=time.monotonic)
    released: bool = False


class SshExecutor:
    """Executor over SSH; safe to call concurrently for thousands of hosts."""

    name = "ssh"

    def __init__(self, config: SshConfig | None = None) -> None:
        self.config = config or SshConfig()
        self.connections_opened = 0  # handshakes done: lets tests and benchmarks see the reuse
        self._pool: dict[Key, asyncio.Task[_Conn]] = {}  # a task: callers share one handshake
        self._waiting: dict[Key, int] = {}  # callers waiting for a handshake, per key
        self._open = 0  # connections open or opening, against max_connections
        self._slot_freed = asyncio.Event()
        self._client_keys: dict[str, list[asyncssh.SSHKey]] = {}  # by key file
        self._jumps: dict[tuple[str, str], asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._known: tuple[tuple[int, int], asyncssh.SSHKnownHosts] | None = None
        _redact_asyncssh_commands()

    @property
    def open_connections(self) -> int:
        """Connections open or being opened now; never more than `max_connections`."""
        return self._open

    async def run(
        self, target: Target, command: str, *, timeout: float, stdin: str | None = None
    ) -> Result:
        """Run a shell command; a dead cached connection is dropped and reopened once."""
        data = stdin.encode() if stdin is not None else None
        return await self._become_session(target, command, data, timeout)

    async def put_file(
        self, target: Target, path: str, content: bytes, *, mode: int = 0o644, timeout: float
    ) -> Result:
        """Stream the content into a temporary file beside `path`, then rename it over `path`."""
        parent, name = os.path.split(path)
        template = shlex.quote(os.path.join(parent or ".", f".{name}.XXXXXX"))
        script = (
            f"tmp=$(mktemp {template}) || exit 1; "
            f'if cat > "$tmp" && chmod {mode:o} "$tmp" && mv -f "$tmp" {shlex.quote(path)}; '
            'then exit 0; else rm -f "$tmp"; exit 1; fi'
        )
        return await self._become_session(target, script, content, timeout)

    async def close(self) -> None:
        """Close every connection."""
        tasks = list(self._pool.values())
        for task in tasks:
            task.cancel()  # handshakes in progress
        await asyncio.gather(*tasks, return_exceptions=True)
        conns = [c for c in map(_opened, tasks) if c is not None]
        for pooled in conns:
            self._release(pooled)
        await asyncio.gather(*(c.conn.wait_closed() for c in conns), return_exceptions=True)
        jumps = list(self._jumps.values())
        self._jumps.clear()
        for jump in jumps:
            jump.cancel()
        for jump_conn in await asyncio.gather(*jumps, return_exceptions=True):
            if isinstance(jump_conn, asyncssh.SSHClientConnection):
                jump_conn.close()

    # -- one command -----------------------------------------------------------------------

    async def _become_session(
        self, target: Target, command: str, data: bytes | None, timeout: float
    ) -> Result:
        """Run as the target's `become_user`; a sudo password goes first on the input."""
        password = target.become_password or self.config.become_password
        if password and target.become_user:
            data = password.encode() + b"\n" + (data or b"")
        else:
            password = ""
        script = become(command, target.become_user, with_password=bool(password))
        return await self._session(target, script, data, timeout)

    async def _session(
        self, target: Target, command: str, data: bytes | None, timeout: float
    ) -> Result:
        start = time.monotonic()
        where = _where(target.hostname, target.connect_to, target.port)
        for attempt in (1, 2):
            try:
                pooled = await self._lease(target)
            except _Unreachable as exc:
                return Result(exit_code=None, error=str(exc), duration_s=_since(start))
            try:
                async with pooled.sessions:
                    return await self._execute(pooled, command, data, timeout, start)
            except _NoSession as exc:
                if not pooled.conn.is_closed():
                    error = f"unreachable: {where} refused a session: {exc}"
                    return Result(exit_code=None, error=error, duration_s=_since(start))
                self._release(pooled)
                if attempt == 2:
                    error = f"unreachable: connection to {where} lost: {exc}"
                    return Result(exit_code=None, error=error, duration_s=_since(start))
                log.info("ssh connection to %s was closed; reconnecting", where)
            finally:
                self._unlease(pooled)
        raise AssertionError("unreachable code")  # pragma: no cover

    async def _execute(
        self, pooled: _Conn, command: str, data: bytes | None, timeout: float, start: float
    ) -> Result:
        """Run in an open connection; only `_NoSession` propagates, all after it is a Result."""
        out, err = OutputCapture(), OutputCapture()
        process: Any = None
        try:
            async with asyncio.timeout(timeout):
                try:
                    process = await pooled.conn.create_process(
                        host_enforced(command, timeout),
                        input=data or None,
                        stdin=asyncssh.DEVNULL if not data else asyncssh.PIPE,
                        encoding=None,
                    )
                except (asyncssh.Error, OSError) as exc:
                    raise _NoSession(_reason(exc)) from exc
                await asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
                await process.wait_closed()
        except TimeoutError:
            _kill(process)
            if pooled.users == 1:  # a wedged connection also looks like this: start afresh
                self._release(pooled)
            return result_from(None, out, err, start, error=timeout_error(timeout))
        except _NoSession:
            raise
        except (asyncssh.Error, OSError) as exc:  # it started, so it must not be re-run
            _kill(process)
            self._release(pooled)
            return result_from(None, out, err, start, error=f"connection lost: {_reason(exc)}")
        except BaseException:
            _kill(process)
            raise
        code = process.returncode
        error = "" if code is not None else "connection lost before the command finished"
        return result_from(code, out, err, start, error=error)

    # -- the connection pool ---------------------------------------------------------------

    async def _lease(self, target: Target) -> _Conn:
        user = target.user or self.config.username
        key = (target.hostname, target.connect_to, target.port, user, target.key_path, target.jump)
        task = self._pool.get(key)
        if task is not None and task.done():
            pooled = _opened(task)
            if pooled is None or pooled.conn.is_closed():
                if pooled is not None:
                    self._release(pooled)
                task = None
        if task is None:
            task = asyncio.create_task(self._connect(key))
            task.add_done_callback(lambda t: self._forget_failed(key, t))
            self._pool[key] = task
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            pooled = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                raise _Unreachable("unreachable: the executor was closed") from None
            raise
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
        pooled.users += 1
        return pooled

    def _unlease(self, pooled: _Conn) -> None:
        pooled.users -= 1
        pooled.last_used = time.monotonic()
        if pooled.users == 0:
            self._slot_freed.set()

    def _forget_failed(self, key: Key, task: asyncio.Task[_Conn]) -> None:
        if task.cancelled() or task.exception() is not None:
            if self._pool.get(key) is task:
                del self._pool[key]

    def _release(self, pooled: _Conn) -> None:
        """Close a connection and give its slot back (once)."""
        if pooled.released:
            return
        pooled.released = True
        self._open -= 1
        if (task := self._pool.get(pooled.key)) is not None and _opened(task) is pooled:
            del self._pool[pooled.key]
        pooled.conn.close()
        self._slot_freed.set()

    async def _take_slot(self) -> None:
        while self._open >= self.config.max_connections:
            opened = (_opened(task) for key, task in self._pool.items() if key not in self._waiting)
            idle = [c for c in opened if c is not None and c.users == 0]
            if idle:
                self._release(min(idle, key=lambda c: c.last_used))
                continue
            self._slot_freed.clear()
            await self._slot_freed.wait()
        self._open += 1

    async def _connect(self, key: Key) -> _Conn:
        await self._take_slot()
        try:
            conn = await self._handshake(key)
        except BaseException:
            self._open -= 1
            self._slot_freed.set()
            raise
        self.connections_opened += 1
        return _Conn(key, conn, asyncio.Semaphore(self.config.max_sessions))

    async def _handshake(self, key: Key) -> asyncssh.SSHClientConnection:
        hostname, address, port, user, key_path, jump = key
        tunnel = None
        if jump:
            tunnel = await self._jump(jump, key_path)
            hostname = f"{hostname} via {jump}"
        return await self._dial(hostname, address, port, user, key_path, tunnel)

    async def _jump(self, spec: str, key_path: str) -> asyncssh.SSHClientConnection:
        """The connection to a jump host, shared by every host behind it. `a,b` (ProxyJump's
        chain) is `b` reached through `a`."""
        task = self._jumps.get((spec, key_path))
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(self._open_jump(spec, key_path))
            self._jumps[spec, key_path] = task
        try:
            return await asyncio.shield(task)
        except _Unreachable as exc:
            raise _Unreachable(f"{exc} (the jump host)") from None

    async def _open_jump(self, spec: str, key_path: str) -> asyncssh.SSHClientConnection:
        earlier, _, last = spec.rpartition(",")
        tunnel = await self._jump(earlier, key_path) if earlier else None
        user, address, port = parse_jump(last.strip(), self.config.username)
        return await self._dial(address, address, port, user, key_path, tunnel)

    async def _dial(
        self,
        hostname: str,
        address: str,
        port: int,
        user: str,
        key_path: str,
        tunnel: asyncssh.SSHClientConnection | None,
    ) -> asyncssh.SSHClientConnection:
        cfg = self.config
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                return await asyncssh.connect(
                    address,
                    port,
                    tunnel=tunnel,
                    username=user,
                    client_keys=self._keys(key_path),
                    config=[],  # SshConfig is the whole truth, not the user's ~/.ssh/config
                    host_key_alias=hostname if hostname != address and not tunnel else None,
                    keepalive_interval=cfg.keepalive_interval,
                    **self._host_key_options(),
                )
        except TimeoutError:
            why = f"no SSH handshake within {cfg.connect_timeout:g} s"
        except asyncssh.HostKeyNotVerifiable as exc:
            known = cfg.known_hosts or "~/.ssh/known_hosts"
            why = f"host key verification failed ({exc.reason}; policy {cfg.host_key_policy}, "
            why += f"known_hosts {known})"
        except asyncssh.PermissionDenied as exc:
            why = f"authentication failed for user {user} ({exc.reason})"
        except ConnectionRefusedError:
            why = "connection refused"
        except socket.gaierror as exc:
            why = f"cannot resolve ({exc.strerror})"
        except (asyncssh.Error, OSError) as exc:
            why = _reason(exc)
        raise _Unreachable(f"unreachable: {_where(hostname, address, port)}: {why}")

    def _keys(self, key_path: str = "") -> list[asyncssh.SSHKey] | tuple[()]:
        path = key_path or self.config.key_path
        if not path:
            return ()
        keys = self._client_keys.get(str(path))
        if keys is None:  # read once: a small file, and every handshake needs it
            try:
                keys = self._client_keys[str(path)] = [asyncssh.read_private_key(path)]
            except (OSError, asyncssh.KeyImportError) as exc:
                raise _Unreachable(f"unreachable: cannot load the SSH key {path}: {exc}") from None
        return keys

    def _host_key_options(self) -> dict[str, Any]:
        cfg = self.config
        if cfg.host_key_policy == "insecure":
            return {"known_hosts": None}
        path = cfg.known_hosts or Path("~/.ssh/known_hosts").expanduser()
        options: dict[str, Any] = {"known_hosts": self._parsed_known_hosts(path)}
        if cfg.host_key_policy == "accept-new":
            options["client_factory"] = lambda: _TrustOnFirstUse(path)
        return options

    def _parsed_known_hosts(self, path: Path) -> asyncssh.SSHKnownHosts | bytes:
        """Parse known_hosts once, not per connection (15 ms per 1,000 lines), until it changes."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return b""  # nothing is trusted
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._known is None or self._known[0] != stamp:
            self._known = (stamp, asyncssh.read_known_hosts(str(path)))
        return self._known[1]


class _TrustOnFirstUse(asyncssh.SSHClient):
    """Accept and record the key of a host known_hosts has never seen; refuse a changed one."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        # Only called when the key is not among the trusted ones for this host.
        known = asyncssh.read_known_hosts(str(self.path)) if self.path.is_file() else None
        if known is not None and known.match(host, addr, port)[0]:
            log.warning("host key of %s (%s:%d) changed; refusing it", host, addr, port)
            return False
        name = host if port == 22 else f"[{host}]:{port}"
        algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{name} {algorithm} {blob}\n")
        log.info("recorded new host key of %s (%s) in %s", name, algorithm, self.path)
        return True


class _RedactCommands(logging.Filter):
    """asyncssh logs every command at INFO; commands may hold rendered secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.endswith("Command: %s"):
            record.args = ("<redacted>",)
        return True


def _redact_asyncssh_commands() -> None:
    logger = logging.getLogger("asyncssh")
    if not any(isinstance(f, _RedactCommands) for f in logger.filters):
        logger.addFilter(_RedactCommands())


def _kill(process: Any) -> None:
    """Ask sshd to kill the process group, then drop the channel without waiting for it.

    sshd ≥ 7.9 honours the signal for non-root users; the host's `timeout` covers the rest.
    """
    if process is None:
        return
    with contextlib.suppress(OSError, asyncssh.Error):
        process.send_signal(signal.SIGKILL)
    process.close()


def become(command: str, user: str, *, with_password: bool = False) -> str:
    """Run `command` as `user` through sudo, never waiting at a prompt (it would hang).

    `with_password`: the first line of the input is sudo's password. The shell reads it (a
    builtin: no process shows it), tries it on a command that reads nothing else, and only then
    hands it, followed by the rest of the input, to the real one; so a wrong password never makes
    sudo read the command's own input as more attempts. Where sudo needs no password (NOPASSWD,
    or credentials still cached) the line is dropped and the command gets the rest alone.
    """
    if not user:
        return command
    as_user = f"-H -u {shlex.quote(user)} -- /bin/sh -c"
    run = f"{as_user} {shlex.quote(command)}"
    if not with_password:
        return f"sudo -n {run}"
    refused = shlex.quote(f"sudo: the become password was refused (as {user})")
    return (
        "IFS= read -r fleetops_pw || exit 1; "
        f"if sudo -n {as_user} : 2>/dev/null; then unset fleetops_pw; exec sudo -n {run}; fi; "
        f"printf '%s\\n' \"$fleetops_pw\" | sudo -k -S -p '' {as_user} : 2>/dev/null "
        f"|| {{ unset fleetops_pw; echo {refused} >&2; exit 1; }}; "
        f"{{ printf '%s\\n' \"$fleetops_pw\"; unset fleetops_pw; exec cat; }} "
        f"| sudo -k -S -p '' {run}"
    )


def parse_jump(spec: str, default_user: str) -> tuple[str, str, int]:
    """`[user@]host[:port]` as OpenSSH's ProxyJump takes it: (user, host, port)."""
    user, _, rest = spec.rpartition("@")
    host, port = rest, 22
    if rest.startswith("["):  # [v6 address]:port
        host, _, tail = rest[1:].partition("]")
        port = int(tail[1:]) if tail.startswith(":") and tail[1:].isdigit() else 22
    elif rest.count(":") == 1:
        name, _, number = rest.partition(":")
        if number.isdigit():
            host, port = name, int(number)
    return user or default_user, host, port


def host_enforced(command: str, timeout: float) -> str:
    """Wrap `command` so the host kills its process group when the deadline passes."""
    limit = math.ceil(timeout) + REMOTE_GRACE_S
    return (
        f't=; command -v timeout >/dev/null 2>&1 && t="timeout -s KILL {limit}"; '
        f'exec $t "${{SHELL:-/bin/sh}}" -c {shlex.quote(command)}'
    )


def _opened(task: asyncio.Task[_Conn]) -> _Conn | None:
    """The connection a finished, successful open gave; None while opening or after a failure."""
    if not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


def _where(hostname: str, address: str, port: int) -> str:
    return f"{hostname}:{port}" if hostname == address else f"{hostname} ({address}:{port})"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", "") or getattr(exc, "strerror", "") or str(exc)
    return str(reason) or type(exc).__name__


def _since(start: float) -> float:
    return time.monotonic() - start
