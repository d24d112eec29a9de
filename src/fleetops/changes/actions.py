"""Built-in actions: the workflow steps that are not a plain shell command.

The engine calls `run_action` for them with the host's executor. Like `Executor.run`, an action
reports a host-side failure as a `Result` (`exit_code=None` when it could not run, non-zero when
it ran and failed) and raises `ValueError` only for a mistake in the workflow itself: an unknown
action or a missing parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx

from fleetops.adapters.local.executor import LocalExecutor
from fleetops.changes.executor import MAX_OUTPUT, Executor, Result, Target

ACTIONS = ("wait", "file_put", "http_check", "reboot", "ansible_playbook", "inspect_hardware")
# Actions served by a part of the server the engine is given at start (they need the database).
SERVED = {"inspect_hardware": "the inspection service"}
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
    http: httpx.AsyncClient | None = None,
    served: Mapping[str, ActionHandler] | None = None,
) -> Result:
    """Run a built-in action on one host; `http` lets many http_checks share one client.

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
                result = await _dispatch(action, executor, target, params, timeout, http)
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
    http: httpx.AsyncClient | None,
) -> Result:
    if action == "wait":
        seconds = float(_required(action, params, "seconds"))
        await asyncio.sleep(min(seconds, timeout))
        return Result(exit_code=0) if seconds <= timeout else Result(None, error=_timeout(timeout))
    if action == "file_put":
        return await _file_put(executor, target, params, timeout)
    if action == "http_check":
        return await _http_check(target, params, timeout, http)
    if action == "reboot":
        return await _reboot(executor, target, params, timeout)
    assert action == "ansible_playbook"
    return await _ansible_playbook(target, params, timeout)


async def _file_put(executor: Executor, target: Target, params: Params, timeout: float) -> Result:
    path = str(_required("file_put", params, "path"))
    content = _required("file_put", params, "content")
    data = content if isinstance(content, bytes) else str(content).encode()
    mode = params.get("mode", 0o644)
    mode = int(mode, 8) if isinstance(mode, str) else int(mode)  # "0644" as written in YAML
    return await executor.put_file(target, path, data, mode=mode, timeout=timeout)


async def _http_check(
    target: Target, params: Params, timeout: float, http: httpx.AsyncClient | None
) -> Result:
    """GET the URL from this process; pass on the expected status and body text."""
    address = target.connect_to
    host = f"[{address}]" if ":" in address else address  # an IPv6 literal in a URL
    url = str(_required("http_check", params, "url")).replace("{host}", host)
    expect = int(params.get("expect_status", 200))
    contains = params.get("contains") or None  # an unset template parameter renders empty
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            verify = bool(params.get("verify_tls", True))
            http = await stack.enter_async_context(httpx.AsyncClient(verify=verify))
        try:
            response = await http.get(url, timeout=timeout)
        except httpx.TimeoutException:
            return Result(exit_code=None, error=_timeout(timeout))
        except httpx.HTTPError as exc:
            return Result(exit_code=1, stderr=f"GET {url}: {exc or type(exc).__name__}\n")
    body = response.text[:MAX_OUTPUT]
    summary = f"GET {url} -> {response.status_code}\n"
    if response.status_code != expect:
        return Result(exit_code=1, stdout=body, stderr=f"{summary}expected {expect}\n")
    if contains is not None and str(contains) not in response.text:
        return Result(exit_code=1, stdout=body, stderr=f"{summary}body lacks {contains!r}\n")
    return Result(exit_code=0, stdout=summary)


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


async def _ansible_playbook(target: Target, params: Params, timeout: float) -> Result:
    """Run ansible-playbook here, limited to this host, with the connection as extra vars."""
    playbook = str(_required("ansible_playbook", params, "playbook"))
    program = shutil.which(str(params.get("ansible_playbook", "ansible-playbook")))
    if program is None:
        return Result(
            exit_code=None,
            error="ansible-playbook is not installed: install ansible-core "
            "(pip install ansible-core) on the fleetops host to run playbook actions",
        )
    extra = {
        **dict(params.get("extra_vars") or {}),
        "ansible_host": target.connect_to,
        "ansible_port": target.port,
        "ansible_user": target.user,
    }
    # Extra vars may hold secrets: a 0600 file, not the command line that `ps` shows.
    fd, vars_path = tempfile.mkstemp(prefix="fleetops-vars-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(extra, f)
        argv = [program, "-i", f"{target.hostname},", "-e", f"@{vars_path}", playbook]
        if tags := params.get("tags"):
            argv += ["--tags", ",".join(map(str, tags))]
        if key := params.get("private_key"):
            argv += ["--private-key", str(key)]
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


def _required(action: str, params: Params, name: str) -> Any:
    if name not in params:
        raise ValueError(f"action {action!r} needs the parameter {name!r}")
    return params[name]


def _timeout(timeout: float) -> str:
    return f"timeout after {timeout:g} s"
