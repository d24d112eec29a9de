"""`fleetops operation|workflow|change|freeze ...`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from fleetops.changes.enums import TERMINAL, StepRunState
from fleetops.kit.cli import (
    EXIT_ERROR,
    EXIT_USAGE,
    Column,
    OutputOption,
    api,
    emit,
    fail,
    stderr,
    stdout,
)

operation_app = typer.Typer(help="The operations library.", no_args_is_help=True)
workflow_app = typer.Typer(help="Workflows: operations composed into stages.", no_args_is_help=True)
change_app = typer.Typer(
    help="Change requests: submit, approve, run, follow.", no_args_is_help=True
)
freeze_app = typer.Typer(help="Freeze windows: no batch starts inside one.", no_args_is_help=True)

CHANGE_COLUMNS: list[Column] = [
    ("id", "id"),
    ("state", "state"),
    ("risk", "risk"),
    ("title", "title"),
    ("workflow", lambda c: f"{c['workflow']}@{c['workflow_version']}" if c["workflow"] else "exec"),
    ("hosts", "host_count"),
    ("approvals", lambda c: f"{c['approvals']}/{c['approvals_required']}"),
    ("requester", "requester"),
    ("status", "status"),
]
HOST_COLUMNS: list[Column] = [
    ("host", "hostname"),
    ("stage", "stage_index"),
    ("batch", "batch_index"),
    ("state", "state"),
    ("step", "step_index"),
    ("error", "error"),
]


@operation_app.command("list")
def operation_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """List operations (built-in and site)."""
    emit(
        api(ctx).get("/api/v1/operations"),
        output,
        [
            ("operation", "name"),
            ("version", "version"),
            ("risk", "risk"),
            ("idempotent", "idempotent"),
            ("description", "description"),
        ],
    )


@operation_app.command("show")
def operation_show(ctx: typer.Context, name: str, output: OutputOption = "yaml") -> None:
    """Show one operation and its parameters."""
    emit(api(ctx).get(f"/api/v1/operations/{name}"), output, title=name)


@workflow_app.command("list")
def workflow_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """List registered workflows (latest versions)."""
    emit(
        api(ctx).get("/api/v1/workflows"),
        output,
        [
            ("workflow", "name"),
            ("version", "version"),
            ("description", "description"),
            ("by", "created_by"),
            ("at", "created_at"),
        ],
    )


@workflow_app.command("show")
def workflow_show(
    ctx: typer.Context, name: str, version: Annotated[int | None, typer.Option()] = None
) -> None:
    """Print a workflow's YAML."""
    typer.echo(api(ctx).get(f"/api/v1/workflows/{name}", version=version)["source"], nl=False)


@workflow_app.command("pin")
def workflow_pin(
    ctx: typer.Context, name: str, version: Annotated[int | None, typer.Option()] = None
) -> None:
    """Print a workflow's pin (NAME@VERSION#sha256:DIGEST) for the device workflow settings:
    a pinned workflow's changes run pre-approved, and only while its source is unchanged."""
    found = api(ctx).get(f"/api/v1/workflows/{name}", version=version)
    typer.echo(f"{found['name']}@{found['version']}#{found['digest']}")


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}")


@workflow_app.command("validate")
def workflow_validate(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    output: OutputOption = "table",
) -> None:
    """Check a workflow file; every problem with its exact path and line. Exit 1 if invalid."""
    report = api(ctx).post("/api/v1/workflows/validate", {"source": _read(file)})
    if output != "table":
        emit(report, output)
    if not report["ok"]:
        lines = [
            f"{i['path']}: {i['message']}" + (f" (line {i['line']})" if i.get("line") else "")
            for i in report["issues"]
        ]
        fail(f"{file}: {len(lines)} problem(s)", EXIT_ERROR, lines)
    if output == "table":
        stdout.print(f"{file}: valid")


@workflow_app.command("register")
def workflow_register(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    output: OutputOption = "table",
) -> None:
    """Register a workflow version (its `version` must be new)."""
    emit(api(ctx).post("/api/v1/workflows", {"source": _read(file)}), output)


def _params(pairs: list[str] | None, file: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if file is not None:
        loaded = yaml.safe_load(_read(file)) or {}
        if not isinstance(loaded, dict):
            fail(f"{file}: expected a mapping of parameter names to values", EXIT_USAGE)
        params.update(loaded)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"-p takes NAME=VALUE, got {pair!r}", EXIT_USAGE)
        params[key] = yaml.safe_load(value) if value else ""
    return params


@change_app.command("submit")
def change_submit(
    ctx: typer.Context,
    workflow: Annotated[
        str, typer.Argument(help="workflow name (latest version unless --version)")
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="host selector")],
    title: Annotated[str, typer.Option(help="one line: what and why")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (YAML value)")
    ] = None,
    params_file: Annotated[Path | None, typer.Option("--params-file")] = None,
    reason: Annotated[str, typer.Option(help="longer justification for reviewers")] = "",
    version: Annotated[int | None, typer.Option()] = None,
    window_start: Annotated[str | None, typer.Option(help="ISO time, UTC")] = None,
    window_end: Annotated[str | None, typer.Option(help="ISO time, UTC")] = None,
    output: OutputOption = "table",
) -> None:
    """Submit a change request."""
    body = {
        "workflow": workflow,
        "version": version,
        "selector": target,
        "title": title,
        "params": _params(param, params_file),
        "reason": reason,
        "window_start": window_start,
        "window_end": window_end,
    }
    change = api(ctx).post("/api/v1/changes", body)
    if output != "table":
        emit(change, output)
        return
    stdout.print(
        f"change {change['id']}: {change['state']} ({change['risk']} risk, "
        f"{change['host_count']} hosts) — {change['status']}"
    )


@change_app.command("list")
def change_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option()] = None,
    requester: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    output: OutputOption = "table",
) -> None:
    """List change requests, newest first."""
    emit(
        api(ctx).get("/api/v1/changes", state=state, requester=requester, limit=limit),
        output,
        CHANGE_COLUMNS,
    )


@change_app.command("show")
def change_show(ctx: typer.Context, change_id: int, output: OutputOption = "table") -> None:
    """Show a change with each host's progress."""
    detail = api(ctx).get(f"/api/v1/changes/{change_id}")
    if output != "table":
        emit(detail, output)
        return
    hosts = detail.pop("hosts")
    approvals = detail.pop("approvals_given")
    emit(detail, "table", title=f"change {change_id}")
    if approvals:
        emit(
            approvals,
            "table",
            [
                ("by", "approver"),
                ("decision", "decision"),
                ("emergency", "emergency"),
                ("comment", "comment"),
                ("at", "at"),
            ],
        )
    emit(hosts, "table", HOST_COLUMNS)


def _control(ctx: typer.Context, change_id: int, action: str, body: dict[str, Any]) -> None:
    change = api(ctx).post(f"/api/v1/changes/{change_id}/{action}", body)
    stdout.print(f"change {change_id}: {change['state']} — {change['status']}")


@change_app.command("approve")
def change_approve(
    ctx: typer.Context,
    change_id: int,
    comment: Annotated[str, typer.Option("--comment", "-m")] = "",
    emergency: Annotated[
        bool, typer.Option(help="admins: approve at once (reason required)")
    ] = False,
) -> None:
    """Approve a change (operators; never your own)."""
    _control(ctx, change_id, "approve", {"comment": comment, "emergency": emergency})


@change_app.command("reject")
def change_reject(
    ctx: typer.Context,
    change_id: int,
    comment: Annotated[str, typer.Option("--comment", "-m")] = "",
) -> None:
    """Reject a change."""
    _control(ctx, change_id, "reject", {"comment": comment})


def _simple(action: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        change_id: int,
        reason: Annotated[str, typer.Option("--reason", "-m")] = "",
    ) -> None:
        _control(ctx, change_id, action, {"reason": reason})

    command.__doc__ = help_text
    change_app.command(action)(command)


_simple("pause", "Pause: running steps finish, no new host starts.")
_simple("resume", "Resume a paused change (also opens a manual gate).")
_simple("cancel", "Cancel: nothing more runs (no rollback).")
_simple("abort", "Abort, rolling back done hosts when the workflow says on_abort: rollback.")
_simple("retry", "Run the failed hosts again, from the step that failed.")


@change_app.command("logs")
def change_logs(
    ctx: typer.Context,
    change_id: int,
    host: Annotated[str | None, typer.Option()] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing until it ends")
    ] = False,
    output: OutputOption = "table",
) -> None:
    """Step output of a change (one host with --host); -f follows until the change ends."""
    client = api(ctx)
    after = 0
    while True:
        steps = client.get(f"/api/v1/changes/{change_id}/steps", host=host, after=after)
        for step in steps:
            after = max(after, step["id"])
            if output == "json":
                typer.echo(json.dumps(step))
                continue
            if step["state"] == StepRunState.RUNNING:
                continue
            mark = "ok" if step["state"] == StepRunState.SUCCEEDED else step["state"].upper()
            stdout.print(
                f"[{step['hostname']}] step {step['step_index']} {step['operation']}."
                f"{step['phase']} #{step['attempt']}: {mark} (exit {step['exit_code']})"
                + (f" {step['error']}" if step["error"] else ""),
                highlight=False,
                markup=False,  # "[dn-0001]" is a host, not a style
            )
            for stream in ("stdout", "stderr"):
                for line in step[stream].splitlines()[-20:]:
                    stdout.print(f"    {line}", highlight=False, markup=False)
        if not follow:
            return
        state = client.get(f"/api/v1/changes/{change_id}")["state"]
        if state in TERMINAL:
            stderr.print(f"change {change_id} {state}")
            return
        time.sleep(1)


@freeze_app.command("list")
def freeze_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """List freeze windows."""
    emit(
        api(ctx).get("/api/v1/freezes"),
        output,
        [
            ("id", "id"),
            ("name", "name"),
            ("from", "starts_at"),
            ("until", "ends_at"),
            ("reason", "reason"),
            ("by", "created_by"),
        ],
    )


@freeze_app.command("create")
def freeze_create(
    ctx: typer.Context,
    name: str,
    starts_at: Annotated[str, typer.Option("--from", help="ISO time, UTC")],
    ends_at: Annotated[str, typer.Option("--until", help="ISO time, UTC")],
    reason: Annotated[str, typer.Option()] = "",
    output: OutputOption = "table",
) -> None:
    """Declare a freeze window."""
    emit(
        api(ctx).post(
            "/api/v1/freezes",
            {"name": name, "starts_at": starts_at, "ends_at": ends_at, "reason": reason},
        ),
        output,
    )
