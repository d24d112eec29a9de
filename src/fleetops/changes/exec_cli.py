"""`fleetops exec`: one command on many hosts at once, recorded as an ad-hoc change.

Hosts come from the inventory (`--target SELECTOR`) or straight from an inventory file
(`--inventory hosts.ini`, Ansible INI/YAML, NetBox or fleetops formats). The command runs from
here over SSH, all hosts concurrently up to `--forks`; the server records who ran what where and
every host's result.
"""

from __future__ import annotations

import asyncio
import gc
import getpass
import importlib
import shlex
import sys
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from fleetops.changes.enums import ChangeState
from fleetops.changes.executor import Executor, Result, Target
from fleetops.config import get_settings
from fleetops.inventory import formats
from fleetops.inventory.document import ImportFailed
from fleetops.inventory.formats import ansible
from fleetops.kit.cli import (
    EXIT_ERROR,
    EXIT_USAGE,
    ApiClient,
    OutputOption,
    api,
    emit,
    fail,
    stderr,
)


def _targets_from_file(path: Path) -> list[Target]:
    """The hosts a file lists, reached as it says (its become passwords included: they stay in
    this process)."""
    try:
        text = path.read_text(encoding="utf-8")
        doc = formats.parse(text, formats.detect_format(path.name, text))
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}", EXIT_USAGE)
    except ImportFailed as exc:
        fail(f"{path}: {exc}", EXIT_ERROR, [f"line {i.line}: {i.message}" for i in exc.issues])
    targets: list[Target] = []
    notes: Counter[str] = Counter()
    for h in doc.hosts:
        how, unused = ansible.connection(h.labels, h.secrets)
        notes.update(unused)
        targets.append(
            Target(
                hostname=h.hostname,
                address=h.address,
                port=h.ssh_port,
                user=h.ssh_user,
                labels=h.labels,
                **how,
            )
        )
    for note, hosts in sorted(notes.items()):  # once each, not once a host
        stderr.print(f"[yellow]note:[/yellow] {note} ({hosts} host{'s' * (hosts > 1)})")
    return targets


SSH_STACK = "fleetops.adapters.executors"


def _executor(forks: int) -> tuple[Executor, Executor]:
    # Imported here: only `exec` needs the SSH stack, not every command's start-up.
    executors_from = importlib.import_module(SSH_STACK).from_settings
    found = executors_from(get_settings(), max_connections=forks)
    return found["ssh"], found["local"]


async def _fan_out(
    targets: list[Target], command: str, *, forks: int, timeout: float, progress: Progress | None
) -> list[tuple[Target, Result]]:
    ssh, local = _executor(forks)
    limit = asyncio.Semaphore(forks)
    task = progress.add_task("running", total=len(targets)) if progress else None

    async def one(target: Target) -> tuple[Target, Result]:
        executor = local if target.labels.get("executor") == "local" else ssh
        async with limit:
            result = await executor.run(target, command, timeout=timeout)
        if progress is not None and task is not None:
            progress.advance(task)
        return target, result

    try:
        return await asyncio.gather(*(one(t) for t in targets))
    finally:
        await ssh.close()
        await local.close()


def _outcome(result: Result) -> str:
    if result.ok:
        return "ok"
    return "unreachable" if result.exit_code is None else "failed"


def exec_command(
    ctx: typer.Context,
    command: Annotated[list[str], typer.Argument(help="the command (after --)")],
    target: Annotated[str | None, typer.Option("--target", "-t", help="host selector")] = None,
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", exists=True, dir_okay=False, help="inventory file"),
    ] = None,
    forks: Annotated[int, typer.Option("--forks", "-f", min=1, max=5000)] = 500,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds per host")] = 60.0,
    risk: Annotated[
        str, typer.Option(help="read_only (default) or the risk you declare: low, medium, high")
    ] = "read_only",
    ask_become_pass: Annotated[
        bool,
        typer.Option(
            "--ask-become-pass", "-K", help="ask for sudo's password for hosts that become"
        ),
    ] = False,
    become_password_file: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="sudo's password: the first line of this file"
        ),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Run a command on many hosts at once (like `ansible all -a`), recorded and audited.
    Exit 1 if any host failed."""
    if (target is None) == (inventory is None):
        fail("give exactly one of --target SELECTOR and --inventory FILE", EXIT_USAGE)
    password = _become_password(ask_become_pass, become_password_file)
    # The SSH stack loads while the server records the change: on another core, the server's
    # work and this import overlap instead of adding up.
    preload = threading.Thread(target=importlib.import_module, args=(SSH_STACK,), daemon=True)
    preload.start()
    # One argument is a shell command line; several are argv words, quoted as given.
    text = command[0] if len(command) == 1 else shlex.join(command)
    client = api(ctx)
    if inventory is not None:
        started, targets = _start_from_file(client, text, risk=risk, inventory=inventory)
    else:
        started, targets = _start_from_selector(client, text, risk=risk, selector=target)
    preload.join()
    if password:  # given for this run: it wins over the file's and the settings'
        targets = [replace(t, become_password=password) for t in targets]
    show = output == "table" and stderr.is_terminal
    results = _run_with_progress(targets, text, forks=forks, timeout=timeout, show=show)
    change = _record_results(client, started, results)
    _report(results, change, output)
    if change["state"] != ChangeState.SUCCEEDED:
        raise typer.Exit(EXIT_ERROR)


def _become_password(ask: bool, path: Path | None) -> str:
    """sudo's password for this run, asked on the terminal or read from a file; empty: none."""
    if ask and path is not None:
        fail("give one of --ask-become-pass and --become-password-file", EXIT_USAGE)
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {path}: {exc}", EXIT_USAGE)
        if not lines or not lines[0]:
            fail(f"{path} is empty: its first line is the password", EXIT_USAGE)
        return lines[0]
    if not ask:
        return ""
    if not sys.stdin.isatty():
        fail("--ask-become-pass needs a terminal; use --become-password-file", EXIT_USAGE)
    password = getpass.getpass("BECOME password: ")
    if not password:
        fail("no password given", EXIT_USAGE)
    return password


def _start_from_file(
    client: ApiClient, text: str, *, risk: str, inventory: Path
) -> tuple[dict[str, Any], list[Target]]:
    """Record the change for the hosts an inventory file lists; they are reached as it says."""
    targets = _targets_from_file(inventory)
    started = client.post(
        "/api/v1/adhoc",
        {
            "command": text,
            "risk": risk,
            "hosts": [{"hostname": t.hostname} for t in targets],
            "source": f"inventory {inventory.name}",
        },
    )
    return started, targets


def _start_from_selector(
    client: ApiClient, text: str, *, risk: str, selector: str | None
) -> tuple[dict[str, Any], list[Target]]:
    """Record the change for the selected hosts; the server answers how to reach each one."""
    started = client.post("/api/v1/adhoc", {"command": text, "risk": risk, "selector": selector})
    targets = [
        Target(
            hostname=t["hostname"],
            address=t["address"],
            port=t["port"],
            user=t["user"],
            labels=t["labels"],
            **ansible.connection(t["labels"])[0],  # imported hosts keep them as labels
        )
        for t in started["targets"]
    ]
    return started, targets


def _run_with_progress(
    targets: list[Target], text: str, *, forks: int, timeout: float, show: bool
) -> list[tuple[Target, Result]]:
    """Run the command on every host, with a progress bar on stderr when `show`."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=not show,
    ) as progress:
        # Everything loaded so far lives until exit: the collector need not walk it again on
        # every pass while thousands of handshakes allocate.
        gc.freeze()
        return asyncio.run(_fan_out(targets, text, forks=forks, timeout=timeout, progress=progress))


def _record_results(
    client: ApiClient, started: dict[str, Any], results: list[tuple[Target, Result]]
) -> dict[str, Any]:
    """Send every host's result to the server, which settles the change; the change."""
    body = [
        {
            "hostname": t.hostname,
            "exit_code": r.exit_code,
            "stdout": r.stdout,
            "stderr": r.stderr,
            "error": r.error,
        }
        for t, r in results
    ]
    change: dict[str, Any] = client.post(
        f"/api/v1/adhoc/{started['change_id']}/results", {"results": body}
    )
    return change


def _report(results: list[tuple[Target, Result]], change: dict[str, Any], output: str) -> None:
    rows: list[dict[str, Any]] = [
        {
            "hostname": t.hostname,
            "result": _outcome(r),
            "exit_code": r.exit_code,
            "stdout": r.stdout,
            "stderr": r.stderr,
            "error": r.error,
        }
        for t, r in results
    ]
    if output != "table":
        emit({"change_id": change["id"], "state": change["state"], "hosts": rows}, output)
        return
    emit(
        [r | {"output": (r["stdout"] or r["stderr"] or r["error"]).strip()[:200]} for r in rows],
        "table",
        [("host", "hostname"), ("result", "result"), ("exit", "exit_code"), ("output", "output")],
    )
    counts = Counter(r["result"] for r in rows)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    stderr.print(f"change {change['id']} {change['state']}: {summary}")
