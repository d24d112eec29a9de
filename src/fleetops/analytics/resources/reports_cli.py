"""`fleetops resources waste` and `imbalance`: where requested capacity goes unused, and which
failure domains run hotter than others."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fleetops.kit.cli import Column, OutputOption, emit, fail, stderr, stdout
from fleetops.kit.exitcodes import EXIT_USAGE


def register(app: typer.Typer) -> None:
    """Add the report commands to the `resources` app."""
    app.command("waste")(waste)
    app.command("imbalance")(imbalance)


class _Stages:
    """The stage a long command is at, on stderr once it has run a second (quick runs stay
    quiet): a spinner on a terminal, a line per stage otherwise."""

    def __init__(self) -> None:
        import threading

        self.stage = "working"
        self.shown = False
        self.status: Any = None
        self.lock = threading.Lock()
        self.timer = threading.Timer(1.0, self._show)
        self.timer.daemon = True

    def __enter__(self) -> _Stages:
        self.timer.start()
        return self

    def __call__(self, stage: str) -> None:
        with self.lock:
            self.stage = stage
            if self.shown:
                self._say()

    def _show(self) -> None:
        with self.lock:
            self.shown = True
            self._say()

    def _say(self) -> None:
        if not stderr.is_terminal:
            stderr.print(f"{self.stage}...", highlight=False)
        elif self.status is None:
            self.status = stderr.status(self.stage)
            self.status.start()
        else:
            self.status.update(self.stage)

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        with self.lock:
            if self.status is not None:
                self.status.stop()


WASTE_METHODS = ("fleetops", "vpa", "krr", "none")


def waste(
    directory: Annotated[Path, typer.Argument(help="trace directory")],
    key: Annotated[str, typer.Option(help="workload group: task, profile or job")] = "task",
    top: Annotated[int, typer.Option(min=1, help="how many of the most wasteful groups")] = 10,
    bucket: Annotated[
        float | None,
        typer.Option(help="seconds per time bucket; default: about 60 buckets over the trace"),
    ] = None,
    method: Annotated[
        str, typer.Option(help="whose right-sizing is costed: fleetops, vpa, krr or none")
    ] = "fleetops",
    output: OutputOption = "table",
) -> None:
    """What requests leave unused, instance by instance: totals, the most wasteful groups, the
    cluster's allocation and usage over time, and what right-sizing would free."""
    from fleetops.analytics.resources import waste as run
    from fleetops.analytics.resources.answers import answer
    from fleetops.analytics.resources.cli import KEYS
    from fleetops.config import get_settings

    if key not in KEYS:
        fail(f"unknown --key {key!r}; expected one of {', '.join(KEYS)}", EXIT_USAGE)
    if method not in WASTE_METHODS:
        fail(f"unknown --method {method!r}; expected one of {', '.join(WASTE_METHODS)}", EXIT_USAGE)
    if bucket is not None and not bucket > 0:
        fail(f"--bucket must be a positive number of seconds, not {bucket:g}", EXIT_USAGE)
    settings = get_settings()
    try:
        prices = run.Prices(
            core_hour=settings.resources_price_core_hour,
            gb_hour=settings.resources_price_gb_hour,
            gb_per_unit=settings.resources_gb_per_memory_unit,
        )
    except ValueError as exc:
        fail(f"resources_gb_per_memory_unit: {exc}", EXIT_USAGE)

    def compute() -> dict[str, Any]:
        with _Stages() as stages:
            return run.report(
                directory,
                prices=prices,
                key=key,
                top=top,
                bucket_s=bucket,
                method=None if method == "none" else method,
                progress=stages,
            )

    answer(compute, output, _print_waste)


def _print_waste(report: dict[str, Any]) -> None:
    trace, totals = report["trace"], report["totals"]
    stdout.print(
        f"{trace['instances']:,} instances in {trace['groups']:,} groups (key {trace['key']}), "
        f"{trace['start_s']:,.0f}-{trace['end_s']:,.0f} s ({trace['span_s'] / 3600:.1f} h); "
        "waste is counted instance by instance: max(0, request - usage) x duration",
        highlight=False,
    )
    rows = [
        {
            "resource": "CPU (core-hours)" if resource == "cpu" else "memory (unit-hours)",
            **{k: f"{figures[k]:,.1f}" for k in ("requested", "used", "wasted")},
            "share": f"{figures['waste_share']:.1%}",
            "cost": _money(figures["wasted_cost"]),
            "peak": f"{figures['peak']['waste_share']:.1%}" if "peak" in figures else "",
        }
        for resource, figures in totals.items()
    ]
    columns = [("", "resource"), ("requested", "requested"), ("used", "used")]
    columns += [("wasted", "wasted"), ("waste share", "share"), ("wasted cost", "cost")]
    if any(row["peak"] for row in rows):
        columns.append(("waste share (peaks)", "peak"))
    emit(rows, "table", columns, title="Totals")
    _print_groups(report["groups"])
    _print_timeline(report["timeline"])
    _print_rightsizing(report["rightsizing"], report["prices"])


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _cell(path: str, spec: str, suffix: str = "") -> Callable[[dict[str, Any]], str]:
    """A table cell: the value at `path` (dots descend) formatted by `spec`; empty for None."""

    def cell(row: dict[str, Any]) -> str:
        value: Any = row
        for part in path.split("."):
            value = value[part]
        return "" if value is None else format(value, spec) + suffix

    return cell


def _print_groups(groups: list[dict[str, Any]]) -> None:
    columns: list[Column] = [("group", "group"), ("instances", _cell("instances", ","))]
    for resource, name in (("cpu", "CPU"), ("mem", "mem")):
        columns += [
            (f"{name} requested", _cell(f"{resource}.requested", ",.1f")),
            (f"{name} wasted", _cell(f"{resource}.wasted", ",.1f")),
            (f"{name} waste", _cell(f"{resource}.waste_share", ".1%")),
        ]
        if groups and groups[0][resource]["recommendation"] is not None:
            columns.append((f"{name} rec.", _cell(f"{resource}.recommendation", "g")))
    columns.append(("wasted cost", _cell("wasted_cost", ",.2f")))
    emit(groups, "table", columns, title="The most wasteful groups (unit-hours)")


def _print_timeline(timeline: dict[str, Any]) -> None:
    columns: list[Column] = [("from s", _cell("start_s", ",.0f"))]
    parts = ["allocated", "used"]
    if timeline["buckets"] and timeline["buckets"][0]["cpu_rightsized"] is not None:
        parts.append("rightsized")
    for resource, name in (("cpu", "cores"), ("mem", "memory")):
        columns += [(f"{name} {part}", _cell(f"{resource}_{part}", ",.1f")) for part in parts]
    title = f"Allocated and used by running instances, average per {timeline['bucket_s']:g} s"
    emit(timeline["buckets"], "table", columns, title=title)


def _print_rightsizing(rightsizing: dict[str, Any] | None, prices: dict[str, Any]) -> None:
    if rightsizing is None:
        return
    cpu, mem, money = rightsizing["cpu"], rightsizing["mem"], rightsizing["money"]
    memory = f"{mem['unit_hours']:,.1f} memory unit-hours ({mem['per_hour']:,.1f} units"
    if mem["gb_hours"] is not None:
        memory = f"{mem['gb_hours']:,.1f} GB-hours of memory ({mem['gb_per_hour']:,.1f} GB"
    stdout.print(
        f"Right-sizing ({rightsizing['method']}, learned on {rightsizing['learned_on']}) frees "
        f"{cpu['unit_hours']:,.1f} core-hours ({cpu['per_hour']:,.1f} cores on average, "
        f"{cpu['share_of_requested']:.1%} of the requested) and {memory} on average, "
        f"{mem['share_of_requested']:.1%}): {money['over_trace']:,.2f} over the trace, "
        f"{money['per_hour']:,.2f} an hour at {prices['core_hour']:g} a core-hour"
        + (
            f" and {prices['gb_hour']:g} a GB-hour"
            if money["memory_priced"]
            else " (memory unpriced: set resources_gb_per_memory_unit)"
        ),
        highlight=False,
    )
    peak_cpu, peak_mem = cpu["busiest_bucket"], mem["busiest_bucket"]
    stdout.print(
        f"At the busiest bucket (from {peak_cpu['start_s']:,.0f} s) it gives back "
        f"{peak_cpu['freed']:,.1f} of {peak_cpu['allocated']:,.1f} cores allocated; memory's "
        f"(from {peak_mem['start_s']:,.0f} s) {peak_mem['freed']:,.1f} of "
        f"{peak_mem['allocated']:,.1f} units",
        highlight=False,
    )


LEVELS = ("failure_domain_1", "failure_domain_2")
STATS = ("mean", "p95")


def imbalance(
    directory: Annotated[Path, typer.Argument(help="directory of machine_meta and machine_usage")],
    level: Annotated[
        str, typer.Option(help="failure domain: failure_domain_1 or failure_domain_2")
    ] = "failure_domain_1",
    bucket: Annotated[
        float, typer.Option(help="seconds per time bucket utilisation is averaged over")
    ] = 300.0,
    output: OutputOption = "table",
) -> None:
    """How loaded each failure domain is (mean and p95 utilisation over time), how far apart
    they are, and the cores of load to move, most loaded to least, to even them out."""
    from fleetops.analytics.resources import imbalance as run
    from fleetops.analytics.resources.answers import answer

    if level not in LEVELS:
        fail(f"unknown --level {level!r}; expected one of {', '.join(LEVELS)}", EXIT_USAGE)
    if not bucket > 0:
        fail(f"--bucket must be a positive number of seconds, not {bucket:g}", EXIT_USAGE)

    def compute() -> dict[str, Any]:
        with _Stages() as stages:
            return run.report(directory, level=level, bucket_s=bucket, progress=stages)

    answer(compute, output, _print_imbalance)


def _print_imbalance(report: dict[str, Any]) -> None:
    fleet, usage = report["fleet"], report["fleet"]["usage"]
    stdout.print(
        f"{fleet['machines']:,} machines, {fleet['cores']:,} cores in {fleet['domains']:,} "
        f"{report['level']} domains; usage samples from {fleet['machines_with_usage']:,} machines "
        f"({fleet['cores_with_usage']:,} cores) in {fleet['domains_with_usage']:,} domains, "
        f"t = {usage['first_s'] or 0:,}-{usage['last_s'] or 0:,} s, in {report['bucket_s']:g} s "
        f"buckets; fleet mean CPU {_percent(fleet['cpu_mean'])}, memory "
        f"{_percent(fleet['mem_mean'])} (measured machines only)",
        highlight=False,
    )
    measured = [d for d in report["domains"] if d["cpu_mean"] is not None]
    columns: list[Column] = [("domain", "domain"), ("machines", "machines")]
    columns += [("with usage", "machines_with_usage"), ("cores measured", "cores_with_usage")]
    for resource, name in (("cpu", "CPU"), ("mem", "memory")):
        columns += [(f"{name} {stat}", _cell(f"{resource}_{stat}", ".1f", "%")) for stat in STATS]
    columns.append(("excess cores", _cell("excess_cores", "+,.2f")))
    emit(measured, "table", columns, title="Utilisation over time, most loaded first")
    rest = [d for d in report["domains"] if d["cpu_mean"] is None]
    if rest:
        stdout.print(
            f"without usage samples: {len(rest):,} domain(s) of "
            f"{sum(d['machines'] for d in rest):,} machine(s)",
            highlight=False,
        )
    for resource, name in (("cpu", "CPU"), ("mem", "memory")):
        s = report["spread"][resource]
        if s["max"] is not None:
            stdout.print(
                f"{name} mean utilisation from {_percent(s['min'])} ({s['least_loaded']}) to "
                f"{_percent(s['max'])} ({s['most_loaded']}): {s['range']:.1f} points apart, "
                f"standard deviation {s['stdev']:.1f}",
                highlight=False,
            )
    if report["transfers"]:
        title = "To even out CPU: cores of load to move, most loaded first"
        columns = [("from", "from"), ("to", "to"), ("cores", _cell("cores", ",.2f"))]
        emit(report["transfers"], "table", columns, title=title)


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}%"
