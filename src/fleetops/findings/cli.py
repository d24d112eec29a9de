"""`fleetops finding list|show|ack|resolve`, through the REST API like every command."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetops.findings.enums import FindingStatus, Severity
from fleetops.kit.cli import Column, OutputOption, api, emit, stdout

finding_app = typer.Typer(
    help="Findings: what detectors found, with evidence.", no_args_is_help=True
)


COLUMNS: list[Column] = [
    ("id", "id"),
    ("severity", "severity"),
    ("status", "status"),
    ("kind", "kind"),
    ("entity", lambda f: f"{f['entity_type']}:{f['entity']}"),
    ("title", "title"),
    ("seen", "occurrences"),
    ("first seen", "first_seen"),
    ("last seen", "last_seen"),
]
EVIDENCE_COLUMNS: list[Column] = [
    ("type", "type"),
    ("ref", lambda r: ", ".join(f"{k}={v}" for k, v in r.items() if k != "type")),
]


@finding_app.command("list")
def finding_list(
    ctx: typer.Context,
    status: Annotated[
        FindingStatus | None, typer.Option(help="open, acknowledged or resolved")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="e.g. straggler")] = None,
    entity: Annotated[str | None, typer.Option(help="exact entity, e.g. a hostname")] = None,
    severity: Annotated[Severity | None, typer.Option()] = None,
    since: Annotated[str | None, typer.Option(help="seen since (ISO time with zone)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """List findings, newest first."""
    page = api(ctx).get(
        "/api/v1/findings",
        status=status.value if status else None,
        kind=kind,
        entity=entity,
        severity=severity.value if severity else None,
        since=since,
        limit=limit,
        offset=offset,
    )
    emit(page, output, COLUMNS)


@finding_app.command("show")
def finding_show(ctx: typer.Context, finding_id: int, output: OutputOption = "table") -> None:
    """Show a finding with its evidence refs and details."""
    finding: dict[str, Any] = api(ctx).get(f"/api/v1/findings/{finding_id}")
    if output != "table":
        emit(finding, output)
        return
    evidence = finding.pop("evidence")
    details = finding.pop("details")
    emit(finding, "table", title=f"finding {finding_id}")
    if details:
        emit({k: str(v) for k, v in details.items()}, "table", title="details")
    if evidence:
        emit(evidence, "table", EVIDENCE_COLUMNS, title="evidence (newest last)")


@finding_app.command("ack")
def finding_ack(
    ctx: typer.Context,
    finding_id: int,
    reason: Annotated[str, typer.Option("--reason", "-m", help="kept in the audit log")] = "",
) -> None:
    """Acknowledge a finding (operators): someone is on it."""
    finding = api(ctx).post(f"/api/v1/findings/{finding_id}/ack", {"reason": reason})
    stdout.print(
        f"finding {finding_id}: acknowledged by {finding['acknowledged_by']}",
        highlight=False,
        markup=False,
    )


@finding_app.command("resolve")
def finding_resolve(
    ctx: typer.Context,
    finding_id: int,
    reason: Annotated[
        str, typer.Option("--reason", "-m", help="what was done, or why it is no problem")
    ],
) -> None:
    """Resolve a finding (operators), saying why; a recurrence opens a new finding."""
    finding = api(ctx).post(f"/api/v1/findings/{finding_id}/resolve", {"reason": reason})
    stdout.print(
        f"finding {finding_id}: resolved by {finding['resolved_by']} — {finding['resolution']}",
        highlight=False,
        markup=False,
    )
