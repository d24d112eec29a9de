"""The CLI's local server: the API on the local database, kept running between commands.

Without `--server`, a command speaks to the API in-process. Building it (FastAPI, the ORM models,
every route's schema, the migration check) takes seconds; listing hosts takes milliseconds. So,
like ssh's ControlPersist, the first local command starts that same app in a process of its own,
listening on a Unix socket only this user can open, and later commands with the same settings
talk to it over HTTP, exactly as they would to a remote server. It exits after
`cli_persist_seconds` without a request; 0 turns it off.

One server per (settings, code, database file): a changed setting, an upgraded package or a
recreated SQLite file gets a new server, so a command never meets stale state. The socket lives
in a directory only this user may enter, and the server also checks each connection's peer:
another user, root included, is refused (the server acts with the local user's admin rights).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetops.config import Settings

START_TIMEOUT_S = 60.0  # a first start migrates the database; that can take a while
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class StartFailed(Exception):
    """The local server did not come up; the message says why, from its own log."""


def runtime_dir() -> Path | None:
    """This user's private directory for sockets, created 0700; None if an existing one is not
    safely ours (someone else's, a symlink, or open to others): then nothing persists."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    uid = os.getuid()
    path = Path(base) / "fleetops" if base and os.path.isdir(base) else None
    if path is None:
        path = Path(tempfile.gettempdir()) / f"fleetops-{uid}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return None
    if not path.is_dir() or path.is_symlink() or info.st_uid != uid or info.st_mode & 0o077:
        return None
    return path


def socket_path(settings: Settings) -> Path | None:
    """Where the server for these settings listens (whether or not it runs)."""
    if settings.is_sqlite and ":memory:" in settings.database_url:
        return None  # a database that lives and dies with its process
    where = runtime_dir()
    if where is None:
        return None
    path = where / f"{_identity(settings)}.sock"
    # A socket's path must fit in sun_path (108 bytes), with room for the starting name.
    return path if len(os.fsencode(path)) < 100 else None


def _identity(settings: Settings) -> str:
    """A digest of everything the server's answers depend on."""
    from pydantic import SecretStr

    values = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in settings
    }
    parts: dict[str, Any] = {
        "settings": values,
        "python": sys.executable,
        "code": _code_stamp(),
    }
    if _has_relative_path(values):
        parts["cwd"] = os.getcwd()
    if settings.is_sqlite:
        parts["file"] = _file_identity(settings.database_url)
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _code_stamp() -> list[int]:
    """The package's sources by count and newest change: an edit or upgrade is a new server."""
    root = Path(__file__).parent
    newest, count = 0, 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                count += 1
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
    return [count, newest]


def _has_relative_path(values: dict[str, Any]) -> bool:
    url = str(values.get("database_url", ""))
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return True
    paths = [v for x in values.values() for v in (x if isinstance(x, list) else [x])]
    return any(isinstance(p, Path) and not p.is_absolute() for p in paths)


def _file_identity(url: str) -> list[int]:
    """The SQLite file's device and inode: a deleted and recreated database is another one. A
    missing file is created (empty: a new database) so that the server's start, which migrates
    it, does not change the identity the next command computes."""
    path = Path(url.split(":///", 1)[-1].split("?", 1)[0])
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        info = path.stat()
    except OSError:
        return []
    return [info.st_dev, info.st_ino]


# --- the client side -------------------------------------------------------------------------


def ensure_running(path: Path, *, stderr: Any = None) -> None:
    """Connect to the server at `path`, starting it first if none answers."""
    if _answers(path):
        return
    with _locked(path.with_suffix(".lock")):
        if _answers(path):  # another command started it while this one waited
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a server that was killed
        log_path = path.with_suffix(".log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "fleetops", "local", "serve", "--socket", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # not stopped by the terminal's Ctrl-C of this command
                close_fds=True,
            )
        started = time.monotonic()
        deadline = started + START_TIMEOUT_S
        told = False
        while not _answers(path):
            if process.poll() is not None:
                raise StartFailed(_tail(log_path))
            if time.monotonic() > deadline:
                process.kill()
                raise StartFailed(f"no answer after {START_TIMEOUT_S:.0f} s; see {log_path}")
            if not told and stderr is not None and time.monotonic() > started + 3:
                stderr.print("starting the local API server (once; it then stays ready)...")
                told = True
            time.sleep(0.02)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tail(log_path: Path) -> str:
    """The reason in the server's log: its last exception's message, else its last lines."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    except OSError:
        lines = []
    reasons = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Failed): ", line)]
    if reasons:
        return reasons[-1]
    detail = " | ".join(line for line in lines[-6:] if line)
    return detail or f"it exited without a word; see {log_path}"


def running() -> list[tuple[Path, int]]:
    """The local servers of this user that answer, with their process ids."""
    where = runtime_dir()
    if where is None:
        return []
    found = []
    for path in sorted(where.glob("*.sock")):
        pid = _server_pid(path)
        if pid is not None:
            found.append((path, pid))
    return found


def _server_pid(path: Path) -> int | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            pid, uid, _gid = _PEERCRED.unpack(
                probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
        except OSError:
            return None
    return pid if uid == os.getuid() else None


def stop(path: Path, pid: int, timeout: float = 10.0) -> bool:
    """Ask one server to finish (SIGTERM: requests in flight complete) and wait for it."""
    import signal

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    """Whether the process still runs; a zombie its (long gone) parent left does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


# --- the server side -------------------------------------------------------------------------


def serve(path: Path, settings: Settings) -> None:
    """Serve the local app on `path` until idle for `cli_persist_seconds` or stopped."""
    import uvicorn

    from fleetops.cli import local_app

    app = _Activity(local_app(settings))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    config.load()
    config.http_protocol_class = _peer_checked(config.http_protocol_class)
    # Bound under a temporary name and renamed into place once the app has started: a command
    # that finds the socket can use it, and one that finds none waits for this start.
    starting = path.parent / f"{os.getpid()}.starting"
    listener = _listen(starting)
    identity = os.stat(starting).st_ino
    idle = settings.cli_persist_seconds

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            os.rename(starting, path)

        async def on_tick(self, counter: int) -> bool:
            if await super().on_tick(counter):
                return True
            if counter % 10:
                return False
            quiet = app.busy == 0 and time.monotonic() - app.last > idle
            return quiet or _replaced(path, identity)

    try:
        Server(config).run(sockets=[listener])
    finally:
        for name in (starting, path):
            if not _replaced(name, identity):
                with contextlib.suppress(OSError):
                    name.unlink()


def _listen(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    old = os.umask(0o177)  # 0600 from the first moment, not chmod-ed after
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    listener.listen(128)
    return listener


def _replaced(path: Path, identity: int) -> bool:
    """The socket file is gone or another's: someone stopped or superseded this server."""
    try:
        return os.stat(path).st_ino != identity
    except OSError:
        return True


class _Activity:
    """Counts requests in flight and when the last one ended, for the idle exit."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.busy = 0
        self.last = time.monotonic()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.busy += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.busy -= 1
            self.last = time.monotonic()


def _peer_checked(base: type[Any]) -> type[Any]:
    """The server's HTTP protocol, refusing a connection from any other user."""
    uid = os.getuid()

    class PeerChecked(base):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            try:
                _pid, peer, _gid = _PEERCRED.unpack(
                    sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
                )
            except (OSError, AttributeError):
                peer = -1
            if peer != uid:
                transport.abort()

    return PeerChecked
