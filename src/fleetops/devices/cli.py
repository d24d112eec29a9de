"""`fleetops device list|show|transition|history`, through the REST API like every command."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetops.devices.enums import Lifecycle
from fleetops.devices.signals.cli import signals_app
from fleetops.kit.cli import Column, OutputOption, api, emit, stdout

device_app = typer.Typer(
    help="Devices: each host's hardware lifecycle and its history.", no_args_is_help=True
)
device_app.add_typer(signals_app, name="signals")


COLUMNS: list[Column] = [
    ("hostname", "hostname"),
    ("state", "state"),
    ("since", "since"),
    ("by", "updated_by"),
    ("reason", "reason"),
]
HISTORY_COLUMNS: list[Column] = [
    ("at", "at"),
    ("from", "from_state"),
    ("to", "to_state"),
    ("actor", "actor"),
    ("override", lambda t: "yes" if t["override"] else ""),
    ("evidence", "evidence"),
    ("reason", "reason"),
]
SelectorOption = Annotated[
    str | None, typer.Option("--selector", "-s", help="e.g. 'rack=r07' or 'dn-0[01-40]'")
]


@device_app.command("list")
def device_list(
    ctx: typer.Context,
    state: Annotated[Lifecycle | None, typer.Option(help="only devices in this state")] = None,
    selector: SelectorOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """List devices with their lifecycle state, and how many are in each state."""
    page: dict[str, Any] = api(ctx).get(
        "/api/v1/devices",
        state=state.value if state else None,
        selector=selector,
        limit=limit,
        offset=offset,
    )
    emit(page, output, COLUMNS)
    if output == "table":
        counts = ", ".join(f"{s} {n}" for s, n in page["counts"].items() if n)
        stdout.print(f"by state: {counts or 'none'}", highlight=False, markup=False)


@device_app.command("show")
def device_show(ctx: typer.Context, hostname: str, output: OutputOption = "table") -> None:
    """Show a device: its state, where it may go next, and its latest transitions."""
    device: dict[str, Any] = api(ctx).get(f"/api/v1/devices/{hostname}")
    if output != "table":
        emit(device, output)
        return
    recent = device.pop("recent")
    device["next_states"] = ", ".join(device["next_states"]) or "none (retired)"
    emit(device, "table", title=f"device {hostname}")
    if recent:
        emit(recent, "table", HISTORY_COLUMNS, title="recent transitions (newest first)")


@device_app.command("transition")
def device_transition(
    ctx: typer.Context,
    hostname: str,
    to: Annotated[Lifecycle, typer.Argument(help="the state to move to")],
    reason: Annotated[str, typer.Option("--reason", "-m", help="why; kept in the audit log")],
    evidence: Annotated[
        list[int] | None, typer.Option("--evidence", "-e", help="a finding id (repeatable)")
    ] = None,
    override: Annotated[
        bool, typer.Option("--override", help="jump outside the graph (operators)")
    ] = False,
) -> None:
    """Move a device to another lifecycle state (operators)."""
    body = {"to": to.value, "reason": reason, "evidence": evidence or [], "override": override}
    step = api(ctx).post(f"/api/v1/devices/{hostname}/transition", body)
    how = " (override)" if step["override"] else ""
    stdout.print(
        f"{hostname}: {step['from_state']} → {step['to_state']}{how} by {step['actor']}",
        highlight=False,
        markup=False,
    )


@device_app.command("admit")
def device_admit(
    ctx: typer.Context,
    hostname: str,
    reason: Annotated[str, typer.Option("--reason", "-m", help="why it is ready; audited")],
) -> None:
    """Verify new hardware (provisioning) so it can enter service once it passes (operators)."""
    done = api(ctx).post(f"/api/v1/devices/{hostname}/admit", {"reason": reason})
    stdout.print(
        f"{hostname}: verifying; it serves once change {done['change_id']} passes "
        f"(fleetops change show {done['change_id']})",
        highlight=False,
        markup=False,
    )


@device_app.command("history")
def device_history(
    ctx: typer.Context,
    hostname: str,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """Every transition of a device, newest first."""
    page = api(ctx).get(f"/api/v1/devices/{hostname}/history", limit=limit, offset=offset)
    emit(page, output, HISTORY_COLUMNS)
