"""`fleetops repair list|show|update`: the repair queue, one ticket, and progress reports."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetops.devices.enums import TicketStatus
from fleetops.kit.cli import Column, OutputOption, api, emit, stdout

repair_app = typer.Typer(
    help="Repair tickets: the queue, one ticket, and updates from whoever repairs.",
    no_args_is_help=True,
)


COLUMNS: list[Column] = [
    ("id", "id"),
    ("host", "host"),
    ("status", "status"),
    ("action", "action"),
    ("sla", lambda t: "OVERDUE" if t["overdue"] else t["sla_due"]),
    ("escalated", lambda t: "yes" if t["escalated"] else ""),
    ("ref", "external_ref"),
    ("opened", "opened_at"),
]


@repair_app.command("list")
def repair_list(
    ctx: typer.Context,
    status: Annotated[
        list[TicketStatus] | None, typer.Option("--status", help="only this status (repeatable)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="only this host's tickets")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="live tickets past their SLA")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """List repair tickets, newest first, and how many are in each status."""
    page: dict[str, Any] = api(ctx).get(
        "/api/v1/repairs",
        status=[s.value for s in status] if status else None,
        host=host,
        overdue=overdue or None,
        limit=limit,
        offset=offset,
    )
    emit(page, output, COLUMNS)
    if output == "table":
        counts = ", ".join(f"{s} {n}" for s, n in page["counts"].items() if n)
        stdout.print(f"by status: {counts or 'none'}", highlight=False, markup=False)


@repair_app.command("show")
def repair_show(ctx: typer.Context, ticket_id: int, output: OutputOption = "table") -> None:
    """Show one ticket with its notes."""
    ticket: dict[str, Any] = api(ctx).get(f"/api/v1/repairs/{ticket_id}")
    emit(ticket, output, title=f"repair ticket {ticket_id}")


@repair_app.command("update")
def repair_update(
    ctx: typer.Context,
    ticket_id: int,
    status: Annotated[
        TicketStatus | None,
        typer.Option(help="diagnosing, waiting_parts, repaired (starts verification) or failed"),
    ] = None,
    note: Annotated[str, typer.Option("--note", "-m", help="appended to the ticket's notes")] = "",
    vendor: Annotated[str | None, typer.Option()] = None,
    rma: Annotated[str | None, typer.Option("--rma", help="the vendor's RMA number")] = None,
    part: Annotated[str | None, typer.Option()] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="the ticket's id elsewhere")] = None,
    output: OutputOption = "table",
) -> None:
    """Report progress on a ticket (operators)."""
    body = {
        k: v
        for k, v in {
            "status": status.value if status else None,
            "note": note or None,
            "vendor": vendor,
            "rma_number": rma,
            "part": part,
            "external_ref": ref,
        }.items()
        if v is not None
    }
    if not body:
        raise typer.BadParameter(
            "give --status, --note or an RMA field (--vendor/--rma/--part/--ref)"
        )
    ticket: dict[str, Any] = api(ctx).post(f"/api/v1/repairs/{ticket_id}/status", body)
    if output != "table":
        emit(ticket, output)
        return
    stdout.print(
        f"repair ticket {ticket['id']} ({ticket['host']}, {ticket['action']}): {ticket['status']}",
        highlight=False,
        markup=False,
    )
