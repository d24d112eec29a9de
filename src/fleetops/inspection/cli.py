"""`fleetops inspect run|show` and `fleetops baseline show|build`."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from fleetops.changes.enums import TERMINAL, ChangeState, HostRunState
from fleetops.inspection.enums import Outcome, Probe
from fleetops.kit.cli import (
    EXIT_ERROR,
    ApiClient,
    Column,
    OutputOption,
    api,
    emit,
    fail,
    stderr,
    stdout,
)
from fleetops.kit.exitcodes import EXIT_NOT_FOUND

inspect_app = typer.Typer(
    help="Hardware inspection: probe hosts and judge them against their model's baseline.",
    no_args_is_help=True,
)
baseline_app = typer.Typer(
    help="Per-model baselines: the healthy band of every probe's curve.", no_args_is_help=True
)


POLL_S = 1.0
OPEN_HOSTS = (HostRunState.PENDING, HostRunState.RUNNING)  # hosts of a change still to finish
IDLE_HINT_S = 15.0  # an approved change that has not started by then has no engine to run it


def _lowest(r: dict[str, Any]) -> str:
    if r["lowest_point"] is None:
        return ""
    return f"{r['lowest_point']} {r['lowest_ratio'] * 100:.0f} %"


RESULT_COLUMNS: list[Column] = [
    ("id", "id"),
    ("host", "host"),
    ("model", "model"),
    ("probe", "probe"),
    ("status", "status"),
    ("lowest", _lowest),
    ("at", lambda r: r["at"][:19]),
    ("why", lambda r: r["reasons"][0] if r["reasons"] else ""),
]
VERDICT_COLUMNS: list[Column] = [
    ("host", "host"),
    ("probe", "probe"),
    ("status", "status"),
    ("lowest", _lowest),
    ("why", lambda r: "; ".join(r["reasons"])),
]


# --- inspect run ---------------------------------------------------------------------------------


@inspect_app.command("run")
def inspect_run(
    ctx: typer.Context,
    target: Annotated[str, typer.Option("--target", "-t", help="host selector")],
    probe: Annotated[
        list[Probe] | None, typer.Option("--probe", help="probe to run (repeatable; all)")
    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="about a second per figure")] = False,
    device: Annotated[
        str, typer.Option(help="the drive the smart probe reads, e.g. /dev/sda")
    ] = "",
    iperf_server: Annotated[
        str, typer.Option(help="the iperf3 server the network probe measures against")
    ] = "",
    directory: Annotated[
        str, typer.Option(help="where the disk probe writes its scratch file")
    ] = "/var/tmp",
    record_only: Annotated[
        bool,
        typer.Option("--record-only", help="store and judge, succeed whatever the verdict"),
    ] = False,
    reason: Annotated[str, typer.Option(help="why, for the change record")] = "",
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="submit and return; do not follow the change")
    ] = False,
    output: OutputOption = "table",
) -> None:
    """Inspect the selected hosts (a standard change) and print every host's verdicts.

    Exits 1 when any host failed its inspection."""
    client = api(ctx)
    body: dict[str, Any] = {
        "selector": target,
        "device": device,
        "iperf_server": iperf_server,
        "quick": quick,
        "directory": directory,
        "record_only": record_only,
        "reason": reason,
    }
    if probe:  # otherwise the API's default probes
        body["probes"] = [p.value for p in probe]
    started: dict[str, Any] = client.post("/api/v1/inspections", body)
    cid = started["change_id"]
    if no_wait:
        _print_submitted(started, cid, output)
        return
    change = _follow_and_report(client, cid, output)
    if change["state"] != ChangeState.SUCCEEDED:
        raise typer.Exit(EXIT_ERROR)


def _print_submitted(started: dict[str, Any], cid: int, output: str) -> None:
    """With --no-wait: the submitted change, and how to follow it."""
    if output != "table":
        emit(started, output)
        return
    stdout.print(
        f"change {cid}: {started['state']}, inspecting {started['host_count']} host(s); "
        f"follow it with `fleetops change logs {cid} -f`",
        highlight=False,
        markup=False,
    )


def _follow_and_report(client: ApiClient, cid: int, output: str) -> dict[str, Any]:
    """Wait for the change to end, print every host's last verdict per probe; the change."""
    change = follow(client, cid, show=output == "table" and stderr.is_terminal)
    verdicts = latest_verdicts(client, cid)
    if output != "table":
        emit({"change": _brief(change), "results": verdicts}, output)
    else:
        emit(verdicts, "table", VERDICT_COLUMNS, title=f"change {cid}: {change['state']}")
        stdout.print(_ending(change), highlight=False, markup=False)
    return change


def _open(change: dict[str, Any]) -> int:
    return sum(n for s, n in change["hosts_by_state"].items() if s in OPEN_HOSTS)


def follow(client: ApiClient, change_id: int, *, show: bool) -> dict[str, Any]:
    """Poll a change until nothing more runs in it, with a progress bar; the change at the end.

    A paused change ends the wait too: it needs a person (every host failed, or someone paused
    it)."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task(f"change {change_id}", total=None)
        hint_at = time.monotonic() + IDLE_HINT_S
        while True:
            change: dict[str, Any] = client.get(f"/api/v1/changes/{change_id}")
            if change["state"] == ChangeState.APPROVED and hint_at and time.monotonic() > hint_at:
                hint_at = 0.0
                stderr.print(
                    f"change {change_id} has not started after {IDLE_HINT_S:g} s: changes run in "
                    "`fleetops serve`; give --server (Ctrl-C leaves the change queued)",
                    highlight=False,
                )
            hosts = change["host_count"]
            progress.update(
                task,
                total=hosts,
                completed=hosts - _open(change),
                description=f"change {change_id}: {change['status'] or change['state']}"[:60],
            )
            if change["state"] in TERMINAL or change["state"] == ChangeState.PAUSED:
                return change
            time.sleep(POLL_S)


def latest_verdicts(client: ApiClient, change_id: int) -> list[dict[str, Any]]:
    """The last result of each host and probe in a change (retries measure again)."""
    page = client.get("/api/v1/inspections", change=change_id, limit=1000)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in page["items"]:  # newest first
        latest.setdefault((r["host"], r["probe"]), r)
    return sorted(latest.values(), key=lambda r: (r["host"], r["probe"]))


def _brief(change: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "state", "status", "host_count", "hosts_by_state")
    return {k: change[k] for k in keys} | {
        "failed_hosts": sorted(
            h["hostname"] for h in change["hosts"] if h["state"] == HostRunState.FAILED
        )
    }


def _ending(change: dict[str, Any]) -> str:
    cid, counts = change["id"], change["hosts_by_state"]
    done = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    line = f"change {cid} {change['state']}: {done}"
    if change["state"] == ChangeState.PAUSED:
        action, what = ("resume", "to go on") if _open(change) else ("retry", "to measure again")
        line += f" ({change['status']}); `fleetops change {action} {cid}` {what}"
    return line


# --- inspect show --------------------------------------------------------------------------------


@inspect_app.command("show")
def inspect_show(
    ctx: typer.Context,
    result_id: Annotated[int | None, typer.Argument(help="one result, with its bands")] = None,
    host: Annotated[str | None, typer.Option(help="only this host")] = None,
    model: Annotated[str | None, typer.Option(help="only this hardware model")] = None,
    probe: Annotated[Probe | None, typer.Option(help="only this probe")] = None,
    status: Annotated[Outcome | None, typer.Option(help="only this verdict")] = None,
    change: Annotated[int | None, typer.Option(help="only this change's results")] = None,
    latest: Annotated[
        bool, typer.Option("--latest", help="each host's latest result per probe")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """List inspection results, newest first; with an ID, one result against its baseline."""
    client = api(ctx)
    if result_id is not None:
        _show_one(client.get(f"/api/v1/inspections/{result_id}"), output)
        return
    page = client.get(
        "/api/v1/inspections",
        host=host,
        model=model,
        probe=probe.value if probe else None,
        status=status.value if status else None,
        change=change,
        latest=latest or None,
        limit=limit,
        offset=offset,
    )
    emit(page, output, RESULT_COLUMNS)


def _show_one(result: dict[str, Any], output: str) -> None:
    if output != "table":
        emit(result, output)
        return
    baseline = result["baseline"]
    judged = (
        f"baseline {baseline['model']}/{baseline['probe']} v{baseline['version']}"
        if baseline
        else "no baseline"
    )
    stdout.print(
        f"result {result['id']}: {result['host']} ({result['model'] or 'no model'}, "
        f"{result['host_state']}) {result['probe']} {result['status']} on {judged}, "
        f"{result['at'][:19]}",
        highlight=False,
        markup=False,
    )
    bands = baseline["bands"] if baseline else {}
    table = Table("point", "value", "unit", "% of median", "band")
    for point, value in result["points"].items():
        band = bands.get(point)
        ratio = result["ratios"].get(point)
        table.add_row(
            point,
            f"{value:,.1f}",
            result["units"].get(point, ""),
            f"{ratio * 100:.0f}" if ratio is not None else "",
            f"{band['low']:,.1f} – {band['high']:,.1f}" if band else "",
        )
    stdout.print(table)
    load = result["load"]
    if load:
        busy, steal = load["busy_before"] * 100, load["steal_during"] * 100
        stdout.print(
            f"load before: {load['load1_before']:g} on {load['cpus']} CPUs, {busy:.0f} % busy; "
            f"steal during: {steal:.0f} %",
            highlight=False,
        )
    for reason in result["reasons"]:
        stdout.print(f"- {reason}", highlight=False, markup=False)


# --- baselines -----------------------------------------------------------------------------------


@baseline_app.command("show")
def baseline_show(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="hardware model, as the inventory names it")],
    probe: Annotated[Probe | None, typer.Option(help="only this probe")] = None,
    history: Annotated[
        bool, typer.Option("--history", help="every version, not only the active")
    ] = False,
    output: OutputOption = "table",
) -> None:
    """Show a model's baselines: each curve point's median and healthy band."""
    rows: list[dict[str, Any]] = api(ctx).get(
        "/api/v1/baselines",
        model=model,
        probe=probe.value if probe else None,
        history=history or None,
    )
    if not rows:
        which = f" {probe.value}" if probe else ""
        fail(
            f"model {model} has no{which} baseline: inspect in-service hosts with --record-only, "
            f"then `fleetops baseline build {model} --probe PROBE`",
            EXIT_NOT_FOUND,
        )
    if output != "table":
        emit(rows, output)
        return
    for row in rows:
        table = Table("point", "median", "MAD", "low", "high", "unit", title=_title(row))
        for point, band in row["bands"].items():
            table.add_row(
                point,
                *(f"{band[k]:,.1f}" for k in ("median", "mad", "low", "high")),
                band["unit"],
            )
        stdout.print(table)


def _title(row: dict[str, Any]) -> str:
    state = "active" if row["active"] else "inactive"
    return (
        f"{row['model']}/{row['probe']} v{row['version']} ({state}, {row['samples']} hosts, "
        f"built by {row['built_by']} {row['built_at'][:19]}"
        + (f": {row['reason']}" if row["reason"] else "")
        + ")"
    )


@baseline_app.command("build")
def baseline_build(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="hardware model, as the inventory names it")],
    probe: Annotated[Probe, typer.Option(help="the probe whose baseline to build")],
    reason: Annotated[str, typer.Option(help="why (kept with the version)")] = "",
    busy_load: Annotated[
        float | None,
        typer.Option(min=0, help="accept results up to this 1-minute load per CPU (0.5)"),
    ] = None,
    busy_cpu: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="accept results whose CPUs were this busy before (0.25)"),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Build a new baseline version from the model's latest healthy results (operators)."""
    body = {
        "model": model,
        "probe": probe.value,
        "reason": reason,
        "busy_load": busy_load,
        "busy_cpu": busy_cpu,
    }
    row = api(ctx).post("/api/v1/baselines/build", {k: v for k, v in body.items() if v is not None})
    if output != "table":
        emit(row, output)
        return
    kept = f"; v{row['version'] - 1} kept in its history" if row["version"] > 1 else ""
    stdout.print(
        f"baseline {row['model']}/{row['probe']} v{row['version']} built from {row['samples']} "
        f"hosts, now active{kept}",
        highlight=False,
        markup=False,
    )
