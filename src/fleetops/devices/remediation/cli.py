"""`fleetops policy list|test|enable|dry-run|disable|actions`: the remediation rules, through the
REST API like every command. Changing a rule's mode needs an admin."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetops.devices.enums import RuleMode
from fleetops.kit.cli import Column, OutputOption, api, emit, stdout

policy_app = typer.Typer(
    help="Remediation rules: findings and predictions to changes, in dry run or enabled.",
    no_args_is_help=True,
)


def _did(rule: dict[str, Any]) -> str:
    counts = rule["counts"]
    parts = [
        f"{what} {counts[key]}"
        for key, what in (
            ("enabled:submitted", "submitted"),
            ("enabled:held", "held"),
            ("enabled:refused", "refused"),
            ("dry_run:proposed", "would have"),
            ("dry_run:held", "would hold"),
            ("fixed", "fixed"),
            ("not_fixed", "not fixed"),
            ("failed", "failed"),
        )
        if counts.get(key)
    ]
    return ", ".join(parts) or "nothing yet"


RULE_COLUMNS: list[Column] = [
    ("name", "name"),
    ("mode", "mode"),
    ("action", "action"),
    ("on", lambda r: f"{r['kind']}:{r['signature']}" if r["signature"] else r["kind"]),
    ("budget", lambda r: f"{r['per_hour']}/h, {r['hosts_out']} out"),
    ("record", _did),
]
PROPOSAL_COLUMNS: list[Column] = [
    ("host", "host"),
    ("action", "action"),
    ("change", lambda p: f"{p['plan']['workflow']} on {p['plan']['selector']}"),
    ("finding", "finding_id"),
    ("held", lambda p: p["held"] or "no: it would act now"),
]
ACTION_COLUMNS: list[Column] = [
    ("id", "id"),
    ("at", "at"),
    ("rule", "rule"),
    ("mode", "mode"),
    ("host", "entity"),
    ("action", "action"),
    ("status", "status"),
    ("change", "change_id"),
    ("outcome", "outcome"),
]


@policy_app.command("list")
def policy_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """The remediation rules in order, with their mode, budget and record."""
    rules: list[dict[str, Any]] = api(ctx).get("/api/v1/policies")
    emit(rules, output, RULE_COLUMNS)


@policy_app.command("test")
def policy_test(ctx: typer.Context, name: str, output: OutputOption = "table") -> None:
    """What the rule would do now, whatever its mode: nothing is recorded or submitted."""
    found: list[dict[str, Any]] = api(ctx).get(f"/api/v1/policies/{name}/test")
    acting = sum(1 for p in found if not p["held"])
    title = f"{name}: {acting} action(s) now, {len(found) - acting} held by a limit"
    emit(found, output, PROPOSAL_COLUMNS, title=title)
    if output == "table" and not found:
        stdout.print(f"{name}: no open finding calls for it now", highlight=False, markup=False)


def _set(ctx: typer.Context, name: str, mode: RuleMode, output: str) -> None:
    rule: dict[str, Any] = api(ctx).put(f"/api/v1/policies/{name}/mode", {"mode": mode.value})
    if output != "table":
        emit(rule, output)
        return
    stdout.print(f"{name}: {rule['mode']}", highlight=False, markup=False)


@policy_app.command("enable")
def policy_enable(ctx: typer.Context, name: str, output: OutputOption = "table") -> None:
    """Let the rule act: it submits its changes (admins)."""
    _set(ctx, name, RuleMode.ENABLED, output)


@policy_app.command("dry-run")
def policy_dry_run(ctx: typer.Context, name: str, output: OutputOption = "table") -> None:
    """Let the rule only record what it would do (admins)."""
    _set(ctx, name, RuleMode.DRY_RUN, output)


@policy_app.command("disable")
def policy_disable(ctx: typer.Context, name: str, output: OutputOption = "table") -> None:
    """Stop the rule: it neither acts nor records (admins)."""
    _set(ctx, name, RuleMode.DISABLED, output)


@policy_app.command("actions")
def policy_actions(
    ctx: typer.Context,
    rule: Annotated[str | None, typer.Option(help="only this rule's")] = None,
    mode: Annotated[RuleMode | None, typer.Option(help="only those in this mode")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """What the rules did and would have done, newest first."""
    page: dict[str, Any] = api(ctx).get(
        "/api/v1/policies/actions",
        rule=rule,
        mode=mode.value if mode else None,
        limit=limit,
        offset=offset,
    )
    emit(page, output, ACTION_COLUMNS)
