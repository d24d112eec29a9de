"""The `fleetops` command: server, demo, database, and each domain's commands."""

from __future__ import annotations

import gc
import getpass
import shutil
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from pydantic import ValidationError

from fleetops.agent.cli import agent_command
from fleetops.audit.cli import audit_app
from fleetops.auth.cli import token_app, user_app, whoami
from fleetops.auth.roles import Role
from fleetops.changes.cli import change_app, freeze_app, operation_app, workflow_app
from fleetops.changes.exec_cli import exec_command
from fleetops.config import Settings, get_settings
from fleetops.devices.cli import device_app
from fleetops.devices.repairs.cli import repair_app
from fleetops.errors import EXIT_USAGE
from fleetops.findings.cli import finding_app
from fleetops.inspection.cli import baseline_app, inspect_app
from fleetops.inventory.cli import host_app, rack_app
from fleetops.kit.cli import ApiClient, CliState, CommandFailed, OutputOption, emit, stderr, stdout
from fleetops.logs.cli import logs_app

if TYPE_CHECKING:
    from fleetops.changes.executor import Executor

app = typer.Typer(
    name="fleetops",
    help="Operate a compute fleet: every action an audited, guarded change.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
eval_app = typer.Typer(
    help="Measure detection against the simulator's ground truth.", no_args_is_help=True
)
app.add_typer(host_app, name="host")
app.add_typer(rack_app, name="rack")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")
app.add_typer(repair_app, name="repair")
app.add_typer(operation_app, name="operation")
app.add_typer(workflow_app, name="workflow")
app.add_typer(change_app, name="change")
app.add_typer(freeze_app, name="freeze")
app.add_typer(logs_app, name="logs")
app.add_typer(finding_app, name="finding")
app.add_typer(device_app, name="device")
app.add_typer(inspect_app, name="inspect")
app.add_typer(baseline_app, name="baseline")
app.command("agent")(agent_command)
app.command("whoami")(whoami)
app.command("exec", context_settings={"allow_interspersed_args": False})(exec_command)


def _remote_client(server: str, token: str | None) -> ApiClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return ApiClient(httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=120))


def _local_client(settings: Settings) -> ApiClient:
    """The API in-process on the local database, acting as the local OS user with admin rights
    (whoever can write the database file already has them)."""
    # Imported here, not at the top: the web stack is only needed without --server, and
    # `fleetops --help` / remote commands should start instantly.
    import warnings

    from fleetops.auth.dependencies import Principal
    from fleetops.main import create_app

    # Starlette deprecates its httpx-based test client in favour of httpx2; this one in-process
    # client works as it is, so the notice is silenced for this import only.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
        from fastapi.testclient import TestClient

    principal = Principal(0, f"local:{getpass.getuser()}", Role.ADMIN, "local")
    client = TestClient(
        create_app(
            settings.model_copy(update={"engine_enabled": False}), local_principal=principal
        ),
        base_url="http://fleetops.local",
        raise_server_exceptions=True,
    )
    client.__enter__()
    return ApiClient(client)


@app.callback()
def root(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(envvar="FLEETOPS_SERVER", help="server URL; default: the local database"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="FLEETOPS_TOKEN", show_default=False, help="API token for --server"),
    ] = None,
) -> None:
    """Global options."""
    if server:
        ctx.obj = CliState(lambda: _remote_client(server, token))
        ctx.call_on_close(ctx.obj.close)
    else:
        ctx.obj = CliState(lambda: _local_client(get_settings()))
        ctx.call_on_close(ctx.obj.close)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8080)")] = None,
) -> None:
    """Run the server: API, web UI and background work."""
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    _run_server(settings)


def _run_server(
    settings: Settings,
    executors: Mapping[str, Executor] | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> None:
    # Imported here, not at the top: the web stack is only needed without --server, and
    # `fleetops --help` / remote commands should start instantly.
    import uvicorn

    from fleetops.main import create_app

    try:
        settings.check_bind()
    except ValueError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    # Each ingest commit keeps tens of thousands of objects alive for a moment; with the default
    # thresholds the collector walks them into the oldest generation and costs ~30 % of the CPU.
    gc.set_threshold(50_000, 20, 10)
    uvicorn.run(
        create_app(settings, executors=executors, background=background),
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (also done on every server start)."""
    from fleetops.db import make_engine, upgrade

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    stderr.print(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")


@app.command()
def demo(
    hosts: Annotated[int, typer.Option(min=1, help="hosts in the simulated fleet")] = 1000,
    racks: Annotated[int, typer.Option(min=1, help="racks")] = 40,
    port: Annotated[int, typer.Option(help="port")] = 8080,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="build the demo database and stop")
    ] = False,
) -> None:
    """Start the server on a fresh demo database with a generated fleet and a user per role."""
    from fleetops.sim.demo import build_demo, demo_executors, demo_feed, repair_shop

    base = get_settings()
    data_dir = base.data_dir / "demo"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'fleetops.db'}",
        host="127.0.0.1",
        port=port,
        admin_password=None,
        executor="simulated",
        logs_retention_hours=2,
        health_policy_interval=10,
        inspection_quick=True,
    )
    with stderr.status(f"building the demo fleet ({hosts} hosts, {racks} racks)..."):
        credentials, token = build_demo(settings, hosts=hosts, racks=racks)
    stderr.print(
        f"\n[bold]fleetops demo[/bold]: {hosts} hosts in {racks} racks, data in {data_dir}"
    )
    stderr.print(f"  open http://127.0.0.1:{port}/  (API docs: http://127.0.0.1:{port}/api/docs)")
    for username, password in credentials.items():
        stderr.print(f"  {username:<10} password: {password}")
    stderr.print(
        "  changes: a rolling restart is running (live at /changes), an OS patch awaits "
        "approval: log in as operator and admin to approve it"
    )
    stderr.print(
        "  diagnosis: the simulated fleet runs Spark jobs and ships its logs to this server; "
        "faults start after 90 s (live at /diagnosis, findings at /findings)"
    )
    stderr.print(
        "  devices: failing hardware is isolated through a drain change, repaired by a simulated "
        "repair shop, inspected and verified back into service (live at /devices and /repairs)"
    )
    stderr.print(
        "  inspection: baselines from eight machines of each model, then rack r001 is probed a "
        "minute in; its worn-out disk fails (live at /inspection)"
    )
    if not no_serve:
        executors = demo_executors(hosts=hosts, racks=racks)
        feed = demo_feed(hosts=hosts, racks=racks, port=port, token=token)
        shop = repair_shop(settings, executors["simulated"], feed.workload, port=port)
        _run_server(settings, executors, background=[feed.run, shop.run])


@eval_app.command("diagnosis")
def eval_diagnosis(
    hosts: Annotated[int, typer.Option(min=50, max=20_000, help="simulated hosts")] = 1000,
    faults: Annotated[int, typer.Option(min=1, max=200, help="faults to inject")] = 20,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
    minutes: Annotated[
        float, typer.Option(min=1, max=24 * 60, help="simulated minutes the faults spread over")
    ] = 20.0,
    output: OutputOption = "table",
) -> None:
    """Run the simulated fleet with faults through ingestion and the detectors, faster than real
    time, and report precision, recall and time from onset to finding, overall and per kind."""
    import asyncio

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fleetops.sim.evaluate import EvalConfig, run

    config = EvalConfig(hosts=hosts, faults=faults, seed=seed, minutes=minutes)
    with Progress(
        TextColumn("simulating {task.fields[what]}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=1.0, what=f"{hosts} hosts, {faults} faults")
        report = asyncio.run(run(config, progress=lambda done: bar.update(task, completed=done)))
    if output != "table":
        emit(report, output)
        return
    stdout.print(
        f"precision {report['precision']:.3f}   recall {report['recall']:.3f}   "
        f"p95 time to finding {report['p95_time_to_finding_s']} s   "
        f"({report['lines']:,} lines, {report['findings']} findings: "
        f"{report['true_positive_findings']} right, {report['symptom_findings']} symptoms, "
        f"{report['false_positive_findings']} false)"
    )
    rows = [{"kind": kind, **values} for kind, values in report["by_kind"].items()]
    emit(
        rows,
        "table",
        [
            ("fault kind", "kind"),
            ("faults", "faults"),
            ("detected", "detected"),
            ("recall", "recall"),
            ("p95 s", "p95_time_to_finding_s"),
            ("missed", lambda r: ", ".join(r["missed"])),
        ],
    )


def main() -> None:
    """Entry point: run the app, turning failures into one line and an exit code."""
    try:
        app()  # click handles usage errors itself (exit 2)
    except CommandFailed as exc:
        stderr.print(f"[red]error:[/red] {exc}", highlight=False)
        for line in exc.lines:
            stderr.print(f"  {line}", highlight=False)
        sys.exit(exc.code)
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        stderr.print("[red]error:[/red] invalid settings (environment or config file)")
        for error in exc.errors(include_url=False):
            name = "FLEETOPS_" + "_".join(str(part) for part in error["loc"]).upper()
            stderr.print(f"  {name}: {error['msg']}", highlight=False)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()

__all__ = ["Path", "app", "main"]
