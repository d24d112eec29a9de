"""The Executor interface: how the engine runs a command on a host.

Implementations: `adapters.local` (subprocess on this machine), `adapters.ssh` (asyncssh) and
`sim.executor` (the simulated fleet). Every implementation passes the same contract tests. A host
that cannot be reached is a `Result` with `exit_code=None` and an `error`, never an exception: one
bad host must not crash a rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

MAX_OUTPUT = 64 * 1024  # bytes kept per stream per step; the rest is cut and flagged


class StepRefused(Exception):
    """The server will not run this step: it would act on the server itself (a host allowed no
    local executor, a playbook outside the configured directories, connection variables). The
    host fails and the refusal is audited, as an attempt someone should see."""


@dataclass(frozen=True)
class Target:
    """A host as an executor sees it."""

    hostname: str
    address: str = ""  # where to connect; empty: the hostname
    port: int = 22
    user: str = "root"
    labels: Mapping[str, str] = field(default_factory=dict)
    key_path: str = ""  # this host's private key file; empty: the executor's keys
    jump: str = ""  # reach the host through this one first, `[user@]host[:port]` (ProxyJump)
    become_user: str = ""  # run commands as this user through `sudo -n`; empty: as `user`
    # sudo's password for `become_user`, where the host asks one: sent as the first line of the
    # command's input, never in its text. Empty: the executor's own, if any.
    become_password: str = field(default="", repr=False, compare=False)

    @property
    def connect_to(self) -> str:
        return self.address or self.hostname


@dataclass(frozen=True)
class Result:
    """What running one command on one host gave."""

    exit_code: int | None  # None: the command could not run (unreachable, timeout, refused)
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    error: str = ""  # why it could not run or was stopped, e.g. "timeout after 30 s"
    truncated: bool = False  # output was longer than MAX_OUTPUT

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.error


class Executor(Protocol):
    """Runs commands on hosts; safe to call concurrently for many hosts."""

    name: str

    async def run(
        self, target: Target, command: str, *, timeout: float, stdin: str | None = None
    ) -> Result:
        """Run a shell command on the host; never raises for host-side failures."""
        ...

    async def put_file(
        self, target: Target, path: str, content: bytes, *, mode: int = 0o644, timeout: float
    ) -> Result:
        """Write a file on the host atomically (temporary file, then rename)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
