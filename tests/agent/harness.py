"""Real processes for agent tests: a `fleetops serve` that can be SIGKILLed and restarted on the
same database and port, the agent as a subprocess, and the stored lines read back from SQLite."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.logs import service
from tests.fixtures.server import cli_env, free_port
from tests.fixtures.waiting import wait_for

T = TypeVar("T")


def create_ingest_token(db_url: str, name: str) -> str:
    engine = make_engine(db_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            _, plaintext = service.create_ingest_token(
                session, AuditContext(actor="test"), name=name
            )
    finally:
        engine.dispose()
    return plaintext


@dataclass
class Server:
    """A `fleetops serve` on a fixed port; output goes to a file (a pipe nobody reads would fill
    up with access-log lines and stall the server)."""

    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fleetops", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc
        wait_for(
            lambda: proc.poll() is not None or self._healthy(), timeout=60, what="server start"
        )
        assert proc.poll() is None, self.log.read_text()[-3000:]
        return self

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, exactly like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Agent:
    """`fleetops agent` as a subprocess; its stderr is kept in a file across restarts."""

    env: dict[str, str]
    args: list[str]
    log: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fleetops", "agent", *self.args, *extra],
                env=self.env,
                stdout=out,
                stderr=out,
            )
        self.procs.append(proc)
        return proc

    def run(self, *extra: str, timeout: float = 30) -> int:
        proc = self.start(*extra)
        return proc.wait(timeout=timeout)

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.procs[-1]

    def kill(self) -> None:
        if self.procs and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, as a service manager stops it; returns the exit code."""
        if not self.procs:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Backend:
    """A migrated SQLite database file and the environment a server runs on it with."""

    tmp: Path
    db_path: Path
    env: dict[str, str]

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def server(self, **extra: str) -> Server:
        return Server({**self.env, **extra}, free_port(), self.tmp / "server.log")

    def setup(self, tmp: Path) -> Setup:
        """A token of its own (so its lines are told apart), a log and a state directory."""
        name = f"agent-{tmp.name}"[:100]
        logs = tmp / "logs"
        logs.mkdir(parents=True)
        return Setup(self, tmp, name, create_ingest_token(self.db_url, name), logs, tmp / "state")


def make_backend(tmp: Path, sqlite_template: Path) -> Backend:
    tmp.mkdir(parents=True, exist_ok=True)
    db_path = tmp / "fleetops.db"
    shutil.copyfile(sqlite_template, db_path)
    env = cli_env(f"sqlite:///{db_path}", tmp / "data", FLEETOPS_ENGINE_ENABLED="false")
    env.pop("FLEETOPS_INGEST_TOKEN", None)
    env["PYTHONUNBUFFERED"] = "1"
    return Backend(tmp, db_path, env)


@dataclass
class Setup:
    """One agent's world: its token, its log directory, its state directory."""

    backend: Backend
    tmp: Path
    source: str  # the token's name: the `source` of every line it sends
    token: str
    logs: Path
    state: Path

    def agent(self, server: Server, *patterns: str | Path, args: Sequence[str] = ()) -> Agent:
        env = {**self.backend.env, "FLEETOPS_INGEST_TOKEN": self.token}
        argv = [
            "--server",
            server.url,
            "--state-dir",
            str(self.state),
            "--host",
            "test-host",
            "--poll-interval",
            "0.05",
            "--progress-interval",
            "0",
            *args,
            *(str(p) for p in patterns),
        ]
        return Agent(env, argv, self.tmp / "agent.log")

    def rows(self) -> list[dict[str, Any]]:
        """Every line stored from this setup's token, in insertion order."""
        with sqlite3.connect(self.backend.db_path, timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            cur = conn.execute(
                'SELECT host, source, file, "offset", message, labels FROM log_lines '
                "WHERE source = ? ORDER BY id",
                (self.source,),
            )
            return [dict(row) for row in cur]

    def count(self) -> int:
        with sqlite3.connect(self.backend.db_path, timeout=30) as conn:
            query = "SELECT count(*) FROM log_lines WHERE source = ?"
            return int(conn.execute(query, (self.source,)).fetchone()[0])


def numbered(prefix: str, start: int, stop: int) -> list[str]:
    return [f"{prefix} line {n:06d} payload" for n in range(start, stop)]


def write_lines(path: Path, lines: Sequence[str]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
