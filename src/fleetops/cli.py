"""The `fleetops` command: server, demo, database, and each domain's commands.

A command's module is imported when that command runs, not before (`kit.lazygroup`): `fleetops
--help` loads no domain, and a command only its own.
"""

from __future__ import annotations

import gc
import getpass
import shutil
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from fleetops.kit.cli import (
    EXIT_ERROR,
    EXIT_USAGE,
    ApiClient,
    CliState,
    CommandFailed,
    OutputOption,
    emit,
    stderr,
    stdout,
)
from fleetops.kit.lazygroup import Lazy, LazyGroup

if TYPE_CHECKING:
    from fastapi import FastAPI

    from fleetops.changes.executor import Executor
    from fleetops.config import Settings


class Commands(LazyGroup):
    """Every command, in the order help lists them, with its help line repeated so that listing
    imports nothing (`tests/test_cli_startup.py` checks each against the command's own)."""

    lazy: ClassVar[Mapping[str, Lazy]] = {
        "agent": Lazy(
            "fleetops.agent.cli:agent_command",
            "Tail log files and ship them to a fleetops server, without losing or duplicating "
            "lines.",
        ),
        "whoami": Lazy("fleetops.auth.cli:whoami", "Show who the CLI acts as."),
        "exec": Lazy(
            "fleetops.changes.exec_cli:exec_command",
            "Run a command on many hosts at once (like `ansible all -a`), recorded and audited.\n"
            "Exit 1 if any host failed.",
            context_settings={"allow_interspersed_args": False},
        ),
        # This module's own (serve, demo, db, eval) are built only when they run, too.
        "serve": Lazy("fleetops.cli:serve", "Run the server: API, web UI and background work."),
        "demo": Lazy(
            "fleetops.cli:demo",
            "Start the server on a fresh demo database with a generated fleet and a user per role.",
        ),
        "host": Lazy("fleetops.inventory.cli:host_app", "Hosts of the inventory."),
        "rack": Lazy("fleetops.inventory.cli:rack_app", "Racks and their failure domains."),
        "user": Lazy("fleetops.auth.cli:user_app", "Users and their roles."),
        "token": Lazy("fleetops.auth.cli:token_app", "API tokens (shown once, stored hashed)."),
        "audit": Lazy("fleetops.audit.cli:audit_app", "The append-only audit log."),
        "db": Lazy("fleetops.cli:db_app", "Database schema."),
        "local": Lazy(
            "fleetops.cli:local_commands",
            "The local API server that keeps local commands fast between runs.",
        ),
        "eval": Lazy(
            "fleetops.cli:eval_app", "Measure detection against the simulator's ground truth."
        ),
        "repair": Lazy(
            "fleetops.devices.repairs.cli:repair_app",
            "Repair tickets: the queue, one ticket, and updates from whoever repairs.",
        ),
        "operation": Lazy("fleetops.changes.cli:operation_app", "The operations library."),
        "workflow": Lazy(
            "fleetops.changes.cli:workflow_app", "Workflows: operations composed into stages."
        ),
        "change": Lazy(
            "fleetops.changes.cli:change_app", "Change requests: submit, approve, run, follow."
        ),
        "freeze": Lazy(
            "fleetops.changes.cli:freeze_app", "Freeze windows: no batch starts inside one."
        ),
        "logs": Lazy(
            "fleetops.logs.cli:logs_app",
            "Logs: search the recent window, templates, ingest tokens, offline parsing.",
        ),
        "finding": Lazy(
            "fleetops.findings.cli:finding_app", "Findings: what detectors found, with evidence."
        ),
        "device": Lazy(
            "fleetops.devices.cli:device_app",
            "Devices: each host's hardware lifecycle and its history.",
        ),
        "policy": Lazy(
            "fleetops.devices.remediation.cli:policy_app",
            "Remediation rules: findings and predictions to changes, in dry run or enabled.",
        ),
        "inspect": Lazy(
            "fleetops.inspection.cli:inspect_app",
            "Hardware inspection: probe hosts and judge them against their model's baseline.",
        ),
        "baseline": Lazy(
            "fleetops.inspection.cli:baseline_app",
            "Per-model baselines: the healthy band of every probe's curve.",
        ),
        "storage": Lazy(
            "fleetops.analytics.storage.cli:storage_app",
            "Storage analysis: HDFS fsimages, listings and scans, and what they waste.",
        ),
        "resources": Lazy(
            "fleetops.analytics.resources.cli:resources_app",
            "Resource right-sizing: requests against usage, recommenders replayed on traces.",
        ),
        "anomaly": Lazy(
            "fleetops.analytics.anomaly.cli:anomaly_app",
            "Anomaly detection on metric series, scored with the Numenta Anomaly Benchmark.",
        ),
        "predict": Lazy(
            "fleetops.analytics.predict.cli:predict_app",
            "Failure prediction: disks ranked by risk from their daily SMART history.",
        ),
        "forecast": Lazy(
            "fleetops.analytics.forecast.cli:forecast_app",
            "Capacity forecasts with intervals and days until full, and their backtest.",
        ),
    }


app = typer.Typer(
    name="fleetops",
    help="Operate a compute fleet: every action an audited, guarded change.",
    cls=Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
local_commands = typer.Typer(
    help="The local API server that keeps local commands fast between runs.",
    no_args_is_help=True,
)
eval_app = typer.Typer(
    help="Measure detection against the simulator's ground truth.", no_args_is_help=True
)


AccessLogOption = Annotated[
    bool,
    typer.Option("--access-log", help="log every request (off: the audit log has what matters)"),
]


def _remote_client(server: str, token: str | None) -> ApiClient:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return ApiClient(httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=120))


def _local_client() -> ApiClient:
    """The API on the local database, acting as the local OS user with admin rights (whoever can
    write the database file already has them): the user's persistent local server when settings
    allow one (`localserver`), else built in this process."""
    from fleetops.config import get_settings

    settings = get_settings()  # invalid settings stop the command before the web stack loads
    if settings.cli_persist_seconds > 0:
        from fleetops import localserver

        path = localserver.socket_path(settings)
        if path is not None:
            try:
                localserver.ensure_running(path, stderr=stderr)
            except localserver.StartFailed as exc:
                message = f"the local API server did not start: {exc}"
                raise CommandFailed(message, EXIT_ERROR) from None
            import httpx

            return ApiClient(
                httpx.Client(
                    transport=httpx.HTTPTransport(uds=str(path)),
                    base_url="http://fleetops.local",
                    timeout=httpx.Timeout(None, connect=10),
                )
            )
    # Imported here, not at the top: the web stack is only needed without --server, and
    # `fleetops --help` / remote commands should start instantly.
    import warnings

    # Starlette deprecates its httpx-based test client in favour of httpx2; this one in-process
    # client works as it is, so the notice is silenced for this import only.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")
        from fastapi.testclient import TestClient

    client = TestClient(
        local_app(settings), base_url="http://fleetops.local", raise_server_exceptions=True
    )
    client.__enter__()
    return ApiClient(client)


def local_app(settings: Settings) -> FastAPI:
    """The app local commands speak to: no change engine (`fleetops serve` runs changes), and
    every request made by the local OS user, as admin."""
    from fleetops.auth.dependencies import Principal
    from fleetops.auth.roles import Role
    from fleetops.main import create_app

    principal = Principal(0, f"local:{getpass.getuser()}", Role.ADMIN, "local")
    return create_app(
        settings.model_copy(update={"engine_enabled": False}), local_principal=principal
    )


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
        ctx.obj = CliState(_local_client)
        ctx.call_on_close(ctx.obj.close)


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8080)")] = None,
    access_log: AccessLogOption = False,
) -> None:
    """Run the server: API, web UI and background work."""
    from fleetops.config import Settings

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    _run_server(settings, access_log=access_log)


def _run_server(
    settings: Settings,
    executors: Mapping[str, Executor] | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    *,
    access_log: bool = False,
    banner: Callable[[], None] | None = None,
) -> None:
    """Serve until stopped; `banner` is printed once the server listens, after the server's
    own start-up lines, where a user reads last."""
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
    config = uvicorn.Config(
        create_app(settings, executors=executors, background=background),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=access_log,  # a line per request buries everything else; the audit log keeps
        proxy_headers=bool(settings.trusted_proxies),  # what matters
        forwarded_allow_ips=settings.trusted_proxies or None,
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and banner is not None:
                banner()

    Server(config).run()


@local_commands.command("status")
def local_status(output: OutputOption = "table") -> None:
    """List this user's local API servers (one per settings and database)."""
    from fleetops import localserver
    from fleetops.config import get_settings

    mine = localserver.socket_path(get_settings())
    rows = [
        {"pid": pid, "socket": str(path), "these settings": "yes" if path == mine else ""}
        for path, pid in localserver.running()
    ]
    if not rows and output == "table":
        stderr.print("no local API server is running")
        return
    emit(rows, output, [("pid", "pid"), ("socket", "socket"), ("these settings", "these settings")])


@local_commands.command("stop")
def local_stop() -> None:
    """Stop this user's local API servers (requests in flight finish first); the next local
    command starts one again."""
    from fleetops import localserver

    servers = localserver.running()
    stuck = [str(pid) for path, pid in servers if not localserver.stop(path, pid)]
    if stuck:
        raise CommandFailed(f"still running after 10 s: pid {', '.join(stuck)}", EXIT_ERROR)
    stderr.print(f"stopped {len(servers)} local API server(s)")


@local_commands.command("serve", hidden=True)
def local_serve(
    socket: Annotated[Path, typer.Option(help="the Unix socket to listen on")],
) -> None:
    """Run the local API server (started by local commands themselves)."""
    from fleetops import localserver
    from fleetops.config import get_settings

    localserver.serve(socket, get_settings())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (also done on every server start)."""
    from fleetops.config import get_settings
    from fleetops.db import make_engine, upgrade

    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    stderr.print(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")


def demo(
    hosts: Annotated[int, typer.Option(min=1, help="hosts in the simulated fleet")] = 1000,
    racks: Annotated[int, typer.Option(min=1, help="racks")] = 40,
    port: Annotated[int, typer.Option(help="port")] = 8080,
    access_log: AccessLogOption = False,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="build the demo database and stop")
    ] = False,
    slow_link_after: Annotated[
        float,
        typer.Option(
            min=0, help="seconds until a rack's uplink congests (for the live screen's switch link)"
        ),
    ] = 120,
) -> None:
    """Start the server on a fresh demo database with a generated fleet and a user per role."""
    from fleetops.config import Settings, get_settings
    from fleetops.sim import demo as sim

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
        remediation_interval=10,
        inspection_quick=True,
        resources_gb_per_memory_unit=sim.DEMO_GB_PER_MEMORY_UNIT,
    )
    with stderr.status(f"building the demo fleet ({hosts} hosts, {racks} racks)..."):
        credentials, token = sim.build_demo(settings, hosts=hosts, racks=racks)
    if not no_serve:
        executors = sim.demo_executors(hosts=hosts, racks=racks)
        try:
            feed = sim.demo_feed(
                hosts=hosts, racks=racks, port=port, token=token, slow_link_after=slow_link_after
            )
        except ValueError as exc:  # too few hosts or racks for the faults the demo plays
            hint = "give it more --hosts and --racks (the default is 1000 in 40)"
            raise CommandFailed(f"the demo cannot run: {exc}; {hint}", EXIT_USAGE) from None
        executors["simulated"].network = feed.workload.switch_link  # the simulated switches
        shop = sim.repair_shop(settings, executors["simulated"], feed.workload, port=port)
        business = sim.shop_feed(feed, port=port, token=token)
        banner = partial(_demo_banner, hosts, racks, port, data_dir, credentials)
        _run_server(
            settings,
            executors,
            background=[feed.run, shop.run, business.run, sim.analyses_later(settings)],
            access_log=access_log,
            banner=banner,
        )
    else:
        _demo_banner(hosts, racks, port, data_dir, credentials)


def _demo_banner(
    hosts: int, racks: int, port: int, data_dir: Path, credentials: Mapping[str, str]
) -> None:
    """What the demo runs and how to log in: printed last, once the server listens."""
    stderr.print(
        f"\n[bold]fleetops demo[/bold]: {hosts} hosts in {racks} racks, data in {data_dir}"
    )
    stderr.print(f"  open http://127.0.0.1:{port}/  (API docs: http://127.0.0.1:{port}/api/docs)")
    for username, password in credentials.items():
        stderr.print(f"  {username:<10} password: {password}")
    stderr.print(
        f"  live screen: http://127.0.0.1:{port}/live (a wall screen: /live?kiosk=1): the shop's "
        "transactions against their normal band (a shopping peak 3 minutes in), approvals, "
        "changes, job latency, slow links, findings, devices out of service, pushed as they change;"
        " a rack's uplink congests 2 minutes in: Switch link on its hot row proposes the drain"
    )
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
    stderr.print(
        "  storage: the cluster's namespace analysed: recycle bins, small and cold files, "
        "what each fix saves; every host's inode tables and reserved blocks, collected by a "
        "read-only change (at /analytics/storage; `fleetops storage analyze FSIMAGE`)"
    )
    stderr.print(
        "  resources: the shared batch trace's requests against usage, a recommendation per "
        "group; accept one, apply it and approve it as another user: the simulated YARN "
        "scheduler's queue changes (at /analytics/resources; `fleetops resources evaluate`)"
    )
    stderr.print(
        "  remediation: the disk predictor's flagged drives (the shared SMART days, placed in "
        "this fleet) call for drains; the rule runs in dry run, enable it as admin and it drains "
        "two hosts within its budget and opens their replacement tickets (at /remediation; "
        "`fleetops policy list`)"
    )


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
    except Exception as exc:
        # pydantic is loaded by the commands that read settings, not at every start-up.
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError) or exc.title != "Settings":
            raise
        stderr.print("[red]error:[/red] invalid settings (environment or config file)")
        for error in exc.errors(include_url=False):
            name = "FLEETOPS_" + "_".join(str(part) for part in error["loc"]).upper()
            stderr.print(f"  {name}: {error['msg']}", highlight=False)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()

__all__ = ["Path", "app", "main"]
