"""Built-in actions: the workflow steps that are not a plain shell command.

The engine calls `run_action` for them with the host's executor. Like `Executor.run`, an action
reports a host-side failure as a `Result` (`exit_code=None` when it could not run, non-zero when
it ran and failed); it raises `ValueError` only for a mistake in the workflow itself (an unknown
action or a missing parameter) and `StepRefused` for a step the server will not run.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from fleetops.adapters.local.executor import LocalExecutor
from fleetops.changes.executor import Executor, Result, StepRefused, Target

ACTIONS = ("wait", "file_put", "reboot", "ansible_playbook", "inspect_hardware")
# Actions served by a part of the server the engine is given at start (they need the database).
SERVED = {
    "inspect_hardware": "the inspection service",
    "ansible_playbook": "the playbook runner (its directories and SSH settings)",
}
BOOT_ID_COMMAND = "cat /proc/sys/kernel/random/boot_id"
# In the background and a second later, so the command returns before the connection drops.
REBOOT_COMMAND = "nohup sh -c 'sleep 1; systemctl reboot || reboot' </dev/null >/dev/null 2>&1 &"
GUARD_S = 1.0
ANSIBLE_UNREACHABLE = 4  # ansible-playbook's exit code when a host could not be reached

Params = Mapping[str, Any]
# A served action: (executor, target, params, timeout) -> Result, like the built-in ones.
ActionHandler = Callable[[Executor, Target, Params, float], Awaitable[Result]]


async def run_action(
    action: str,
    executor: Executor,
    target: Target,
    params: Params,
    *,
    timeout: float,
    served: Mapping[str, ActionHandler] | None = None,
) -> Result:
    """Run a built-in action on one host.

    `served` holds the handlers of the actions in SERVED that this process provides.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known actions: {', '.join(ACTIONS)}")
    start = time.monotonic()
    try:
        # Each action keeps to `timeout` and says why it ran out; this only stops an overrun.
        async with asyncio.timeout(timeout + GUARD_S):
            if action in SERVED:
                result = await _served(action, served or {}, executor, target, params, timeout)
            else:
                result = await _dispatch(action, executor, target, params, timeout)
    except TimeoutError:
        result = Result(exit_code=None, error=_timeout(timeout))
    return replace(result, duration_s=time.monotonic() - start)


async def _served(
    action: str,
    served: Mapping[str, ActionHandler],
    executor: Executor,
    target: Target,
    params: Params,
    timeout: float,
) -> Result:
    handler = served.get(action)
    if handler is None:
        return Result(
            exit_code=None,
            error=f"{action} needs {SERVED[action]}, which runs in `fleetops serve`: "
            "run it as a step of a change",
        )
    return await handler(executor, target, params, timeout)


async def _dispatch(
    action: str,
    executor: Executor,
    target: Target,
    params: Params,
    timeout: float,
) -> Result:
    if action == "wait":
        seconds = float(_required(action, params, "seconds"))
        await asyncio.sleep(min(seconds, timeout))
        return Result(exit_code=0) if seconds <= timeout else Result(None, error=_timeout(timeout))
    if action == "file_put":
        return await _file_put(executor, target, params, timeout)
    if action == "reboot":
        return await _reboot(executor, target, params, timeout)
    raise AssertionError(f"{action} is served, not dispatched")


async def _file_put(executor: Executor, target: Target, params: Params, timeout: float) -> Result:
    path = str(_required("file_put", params, "path"))
    content = _required("file_put", params, "content")
    data = content if isinstance(content, bytes) else str(content).encode()
    mode = params.get("mode", 0o644)
    mode = int(mode, 8) if isinstance(mode, str) else int(mode)  # "0644" as written in YAML
    return await executor.put_file(target, path, data, mode=mode, timeout=timeout)


async def _reboot(executor: Executor, target: Target, params: Params, timeout: float) -> Result:
    """Reboot, then poll (reconnecting) until the boot id changes; `timeout` bounds it all."""
    interval = float(params.get("poll_interval", 5.0))
    probe_timeout = float(params.get("probe_timeout", 10.0))
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    before = await executor.run(target, BOOT_ID_COMMAND, timeout=min(probe_timeout, left()))
    old = before.stdout.strip()
    if not before.ok or not old:
        reason = before.error or before.stderr.strip() or "empty output"
        return Result(exit_code=before.exit_code, error=f"cannot read the boot id: {reason}")
    command = str(params.get("command") or REBOOT_COMMAND)
    issued = await executor.run(target, command, timeout=min(probe_timeout, left()))
    if issued.exit_code not in (0, None):  # None: the host may already be going down
        return Result(exit_code=issued.exit_code, stderr=issued.stderr, error="reboot refused")
    last = "no probe yet"
    while left() > 0:
        await asyncio.sleep(min(interval, left()))
        probe = await executor.run(target, BOOT_ID_COMMAND, timeout=min(probe_timeout, left()))
        new = probe.stdout.strip()
        if probe.ok and new and new != old:
            return Result(exit_code=0, stdout=f"rebooted: boot id {old} -> {new}\n")
        last = probe.error or ("boot id unchanged" if new == old else "no boot id")
    return Result(
        exit_code=None,
        error=f"{_timeout(timeout)}: no new boot id (last probe: {last})",
    )


# Extra vars a step may set: the connection is the server's (its key, its known_hosts, ssh); a
# variable that picks the connection, its command line or a program to run would run on the
# server, which holds the fleet's key and database (`ansible_connection: local`, a ProxyCommand in
# `ansible_ssh_common_args`, `ansible_ssh_executable`, ...).
ANSIBLE_VARS_ALLOWED = frozenset(
    {"ansible_python_interpreter", "ansible_become", "ansible_become_user"}
)


class _Unsafe(str):
    """A value Ansible must not template (`!unsafe`): a `{{ lookup('pipe', ...) }}` in a step's
    extra vars would otherwise run on the server when the playbook reads it."""

    __slots__ = ()


class _VarsDumper(yaml.SafeDumper):
    pass


_VarsDumper.add_representer(_Unsafe, lambda d, v: d.represent_scalar("!unsafe", str(v)))


def _unsafe(value: Any) -> Any:
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, list):
        return [_unsafe(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _unsafe(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Playbooks:
    """The `ansible_playbook` action as the server provides it.

    Playbooks come only from the configured directories (a path that resolves outside them is
    refused); the connection is the server's own SSH settings, and a step's extra vars can
    neither change it nor be templated by Ansible."""

    dirs: tuple[Path, ...] = ()
    key_path: Path | None = None
    known_hosts: Path | None = None
    host_key_policy: str = "strict"
    program: str = "ansible-playbook"

    def resolve(self, playbook: str) -> Path:
        """The playbook's real path inside one of the directories, or ValueError saying why."""
        if not self.dirs:
            raise ValueError(
                "no playbook directories are configured: set playbook_dirs "
                "(FLEETOPS_PLAYBOOK_DIRS='[\"/srv/playbooks\"]') to run playbooks"
            )
        for directory in self.dirs:
            root = directory.resolve()
            found = (root / playbook).resolve()
            if found.is_relative_to(root) and found.is_file():
                return found
        dirs = ", ".join(map(str, self.dirs))
        raise ValueError(
            f"playbook {playbook!r} is not a file inside the playbook directories ({dirs})"
        )

    def ssh_args(self) -> str:
        options = ["-o ControlMaster=no", "-o BatchMode=yes"]
        if self.host_key_policy == "insecure":
            options += ["-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null"]
        else:
            strict = "accept-new" if self.host_key_policy == "accept-new" else "yes"
            options.append(f"-o StrictHostKeyChecking={strict}")
            if self.known_hosts is not None:
                options.append(f"-o UserKnownHostsFile={shlex.quote(str(self.known_hosts))}")
        return " ".join(options)

    async def action(
        self, executor: Executor, target: Target, params: Params, timeout: float
    ) -> Result:
        """Run the playbook against the target; StepRefused for a playbook outside the
        directories or extra vars that would move the connection."""
        name = str(_required("ansible_playbook", params, "playbook"))
        try:
            playbook = self.resolve(name)
        except ValueError as exc:
            raise StepRefused(str(exc)) from None
        given = dict(params.get("extra_vars") or {})
        if why := _refused_vars(given):
            raise StepRefused(why)
        program = shutil.which(self.program)
        if program is None:
            return Result(
                exit_code=None,
                error="ansible-playbook is not installed: install ansible-core "
                "(pip install ansible-core) on the fleetops host to run playbook actions",
            )
        extra = {
            **_unsafe(given),
            "ansible_connection": "ssh",
            "ansible_host": target.connect_to,
            "ansible_port": target.port,
            "ansible_user": target.user,
            "ansible_ssh_common_args": self.ssh_args(),
        }
        # Extra vars may hold secrets: a 0600 file, not the command line that `ps` shows.
        fd, vars_path = tempfile.mkstemp(prefix="fleetops-vars-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w") as f:
                yaml.dump(extra, f, Dumper=_VarsDumper)
            argv = [program, "-i", f"{target.hostname},", "-e", f"@{vars_path}", str(playbook)]
            if tags := params.get("tags"):
                argv += ["--tags", ",".join(map(str, tags))]
            if self.key_path is not None:
                argv += ["--private-key", str(self.key_path)]
            result = await LocalExecutor().run(target, shlex.join(argv), timeout=timeout)
        finally:
            os.unlink(vars_path)
        if result.exit_code == ANSIBLE_UNREACHABLE:
            return Result(
                exit_code=None,
                stdout=result.stdout,
                stderr=result.stderr,
                error=f"unreachable: ansible-playbook could not reach {target.hostname}",
                truncated=result.truncated,
            )
        return result


def refusal(action: str, params: Params) -> str | None:
    """Why the server would refuse this action with these (rendered) parameters whatever its
    settings, or None: submission refuses such a step up front, the run refuses it again."""
    if action != "ansible_playbook":
        return None
    playbook = str(params.get("playbook", ""))
    if playbook.startswith("/") or ".." in PurePosixPath(playbook).parts:
        return f"playbook {playbook!r} must be a path inside the playbook directories"
    extra = params.get("extra_vars") or {}
    return _refused_vars(extra) if isinstance(extra, dict) else None


def _refused_vars(given: Mapping[str, Any]) -> str | None:
    refused = sorted(k for k in given if k.startswith("ansible_") and k not in ANSIBLE_VARS_ALLOWED)
    if not refused:
        return None
    allowed = ", ".join(sorted(ANSIBLE_VARS_ALLOWED))
    return (
        f"extra_vars may not set {', '.join(refused)}: the connection is the server's "
        f"(allowed ansible_ vars: {allowed})"
    )


def _required(action: str, params: Params, name: str) -> Any:
    if name not in params:
        raise ValueError(f"action {action!r} needs the parameter {name!r}")
    return params[name]


def _timeout(timeout: float) -> str:
    return f"timeout after {timeout:g} s"
