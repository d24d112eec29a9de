"""`fleetops audit list|verify`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetops.kit.cli import Column, OutputOption, api, emit, fail, stdout
from fleetops.kit.exitcodes import EXIT_ERROR

audit_app = typer.Typer(help="The append-only audit log.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("id", "id"),
    ("at", "at"),
    ("actor", "actor"),
    ("action", "action"),
    ("entity", lambda r: f"{r['entity_type']}:{r['entity_id']}"),
    ("outcome", lambda r: r["outcome"] + _repeats(r)),
    ("request", "request_id"),
]


def _repeats(row: dict[str, Any]) -> str:
    """' ×N' on a row that counts N refusals of one kind in a minute."""
    after = row.get("after")
    return f" ×{after['repeats']}" if isinstance(after, dict) and after.get("repeats") else ""


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str | None, typer.Option(help="e.g. host.* or auth.login")] = None,
    entity_type: Annotated[str | None, typer.Option("--type")] = None,
    entity_id: Annotated[str | None, typer.Option("--entity")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, denied, forbidden, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """Audit records, newest first."""
    page = api(ctx).get(
        "/api/v1/audit",
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        outcome=outcome,
        limit=limit,
        offset=offset,
    )
    emit(page, output, COLUMNS)


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, output: OutputOption = "table") -> None:
    """Recompute the hash chain; exit 1 if any record was edited, removed or reordered."""
    result = api(ctx).get("/api/v1/audit/verify")
    if output != "table":
        emit(result, output)
    if not result["ok"]:
        fail(
            f"audit chain broken at record {result['first_bad_id']}: {result['reason']} "
            f"({result['checked']} records verified before it)",
            EXIT_ERROR,
        )
    if output == "table":
        stdout.print(f"audit chain intact: {result['checked']} records verified")
