"""`fleetops resources evaluate`: recommenders learned on one period, replayed on another;
`recommend`, `decide` and `apply`: a trace's recommendations kept, decided and applied."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fleetops.kit.cli import Column, OutputOption, api, emit, fail, stderr, stdout
from fleetops.kit.exitcodes import EXIT_USAGE

resources_app = typer.Typer(
    help="Resource right-sizing: requests against usage, recommenders replayed on traces.",
    no_args_is_help=True,
)
KEYS = ("task", "profile", "job")


@resources_app.command("evaluate")
def evaluate(
    train: Annotated[Path, typer.Option(help="trace directory to learn from")],
    test: Annotated[Path, typer.Option(help="trace directory to replay (may be --train)")],
    split_at: Annotated[
        float | None,
        typer.Option(
            min=0, help="with --train = --test: arrival second; earlier trains, the rest tests"
        ),
    ] = None,
    key: Annotated[str, typer.Option(help="workload group: task, profile or job")] = "task",
    output: OutputOption = "table",
) -> None:
    """Learn each recommender on the training period, replay the test period: slack and
    violation rate per method, CPU and memory, against the original requests."""
    from fleetops.analytics.resources.answers import answer
    from fleetops.analytics.resources.evaluate import evaluate as run

    if key not in KEYS:
        fail(f"unknown --key {key!r}; expected one of {', '.join(KEYS)}", EXIT_USAGE)
    same = train.resolve() == test.resolve()
    if same and split_at is None:
        fail("--train and --test are the same directory: give --split-at SECONDS", EXIT_USAGE)
    cut = split_at if same else None
    answer(lambda: run(train, test, split_at=cut, key=key), output, _print)


def _print(report: dict[str, Any]) -> None:
    rows = [{"method": "request (reference)", **_cells(report["request"])}]
    rows += [{"method": name, **_cells(figures)} for name, figures in report["methods"].items()]
    rows.append({"method": "bound (sees the test period)", **_cells(report["bound"])})
    counts = report["counts"]
    split = report["split"]
    stdout.print(
        f"{counts['test_instances']:,} test instances "
        f"({counts['unseen_group_instances']:,} in groups unseen in training), key {split['key']}"
    )
    emit(
        rows,
        "table",
        [
            ("method", "method"),
            ("CPU slack", "cpu_slack"),
            ("CPU violations", "cpu_violations"),
            ("memory slack", "mem_slack"),
            ("memory violations", "mem_violations"),
        ],
    )
    stdout.print(
        "bound: the lowest slack one recommendation per group could reach on the test period "
        "at vpa's violation rate; no method learning from the past can go below it",
        highlight=False,
    )


def _cells(figures: dict[str, dict[str, float]]) -> dict[str, str]:
    return {
        f"{resource}_{name}": f"{figures[resource][field]:.1%}"
        for resource in ("cpu", "mem")
        for name, field in (("slack", "slack"), ("violations", "violation_rate"))
    }


@resources_app.command("usage")
def usage(
    source: Annotated[
        Path | None, typer.Argument(help="a directory of usage files, or a usage CSV")
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option(help="read a Prometheus server at this URL instead")
    ] = None,
    start: Annotated[str | None, typer.Option(help="with --prometheus: ISO 8601 or epoch")] = None,
    end: Annotated[str | None, typer.Option(help="with --prometheus: ISO 8601 or epoch")] = None,
    step: Annotated[float, typer.Option(min=1, help="with --prometheus: seconds per row")] = 300,
    namespace: Annotated[str | None, typer.Option(help="with --prometheus: only this one")] = None,
    key: Annotated[str, typer.Option(help="workload group: task, profile or job")] = "task",
    top: Annotated[int, typer.Option(min=1, help="groups shown, most requested CPU first")] = 20,
    output: OutputOption = "table",
) -> None:
    """What each workload group requests and uses, from any usage source: the layout found,
    its units, and per group the mean request, mean usage and usage as a share of the request."""
    from fleetops.analytics.resources import usage as summarise
    from fleetops.analytics.resources.answers import answer

    if key not in KEYS:
        fail(f"unknown --key {key!r}; expected one of {', '.join(KEYS)}", EXIT_USAGE)
    if (source is None) == (prometheus is None):
        fail("give a SOURCE directory or file, or --prometheus URL (one of them)", EXIT_USAGE)

    def compute() -> dict[str, Any]:
        if source is not None:
            return summarise.from_path(source, key=key, top=top)
        return _from_prometheus(prometheus or "", start, end, step, namespace, key, top)

    answer(compute, output, _print_usage)


def _from_prometheus(
    url: str,
    start: str | None,
    end: str | None,
    step: float,
    namespace: str | None,
    key: str,
    top: int,
) -> dict[str, Any]:
    import asyncio

    from fleetops.adapters.prometheus import PrometheusClient
    from fleetops.analytics.resources import usage as summarise
    from fleetops.analytics.resources.sources.prometheus import parse_time

    if start is None or end is None:
        fail("--prometheus needs --start and --end", EXIT_USAGE)
    if not url.startswith(("http://", "https://")):
        fail(f"--prometheus {url!r}: an http:// or https:// URL", EXIT_USAGE)
    began, ended = parse_time(start), parse_time(end)

    async def run() -> dict[str, Any]:
        client = PrometheusClient(url)
        try:
            return await summarise.from_prometheus(
                client,
                url=url,
                start=began,
                end=ended,
                step=step,
                namespace=namespace,
                key=key,
                top=top,
            )
        finally:
            await client.aclose()

    return asyncio.run(run())


def _print_usage(report: dict[str, Any]) -> None:
    for source in report["sources"]:
        skipped = f", {source['skipped']:,} left out ({source['skipped_why']})"
        stdout.print(
            f"{source['layout']}: {source['source']}: {source['rows']:,} rows"
            f"{skipped if source['skipped'] else ''}; CPU: {source['cpu_unit']}, "
            f"memory: {source['mem_unit']}"
        )
    stdout.print(
        f"{report['groups_total']:,} groups (key {report['key']}), "
        f"the {len(report['groups'])} requesting most CPU-time:"
    )
    rows = [
        {
            "grp": g["grp"],
            "instances": f"{g['instances']:,}",
            "hours": f"{g['hours']:,.1f}",
            **{
                f"{r}_{part}": _cell(g[field.format(r)], part)
                for r in ("cpu", "mem")
                for part, field in (
                    ("req", "req_{}"),
                    ("used", "{}"),
                    ("share", "{}_share"),
                    ("peak", "{}_peak"),
                )
            },
        }
        for g in report["groups"]
    ]
    columns = [("group", "grp"), ("instances", "instances"), ("hours", "hours")]
    for r, label in (("cpu", "CPU"), ("mem", "memory")):
        columns += [
            (f"{label} requested", f"{r}_req"),
            (f"{label} used", f"{r}_used"),
            ("used/req", f"{r}_share"),
            ("peak", f"{r}_peak"),
        ]
    emit(rows, "table", columns)


def _cell(value: float | None, part: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if part == "share" else f"{value:.4g}"


METHODS = ("vpa", "krr", "fleetops")
ADVICE_COLUMNS: list[Column] = [
    ("id", "id"),
    ("group", "group"),
    ("target", "target"),
    ("resource", "resource"),
    ("request", lambda r: f"{r['request']:g}"),
    ("recommended", lambda r: f"{r['recommendation']:g} {r['unit']}"),
    ("saving", lambda r: f"{r['saving']:,.0f}"),
    ("risk", lambda r: "" if r["risk"] is None else f"{r['risk']:.1%}"),
    ("status", "status"),
]


@resources_app.command("recommend")
def recommend(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(help="trace directory (batch_tasks, batch_instances)")
    ],
    key: Annotated[str, typer.Option(help="workload group: task, profile or job")] = "task",
    method: Annotated[str, typer.Option(help="recommender: vpa, krr or fleetops")] = "fleetops",
    top: Annotated[int, typer.Option(min=1, help="recommendations printed (all are kept)")] = 20,
    output: OutputOption = "table",
) -> None:
    """Recommend right-sized requests for every workload group of a trace and keep them as a
    report on the server (the trace is read here; only the figures travel)."""
    from fleetops.analytics.resources.advice import compute
    from fleetops.analytics.resources.answers import computed

    if key not in KEYS:
        fail(f"unknown --key {key!r}; expected one of {', '.join(KEYS)}", EXIT_USAGE)
    if method not in METHODS:
        fail(f"unknown --method {method!r}; expected one of {', '.join(METHODS)}", EXIT_USAGE)
    with stderr.status(f"recommending ({method}, by {key}) from {directory}..."):
        report = computed(lambda: compute(directory, key=key, method=method))
    client = api(ctx)
    saved = client.request("POST", "/api/v1/resources/reports", json=report.model_dump(mode="json"))
    kept = client.get(f"/api/v1/resources/reports/{saved['id']}")
    if output.lower() != "table":
        emit(kept, output)
        return
    _print_report(kept, top)


def _print_report(report: dict[str, Any], top: int) -> None:
    stdout.print(
        f"resource report {report['id']}: {report['source']}, {report['method']} by "
        f"{report['key']}, {len(report['recommendations'])} recommendations "
        f"(/analytics/resources?report={report['id']})"
    )
    for resource, total in report["totals"].items():
        stdout.print(
            f"  {resource}: requested {total['requested']:,.0f}, used {total['used']:,.0f}, "
            f"recommended {total['recommended']:,.0f} (x seconds)"
        )
    emit(report["recommendations"][:top], "table", ADVICE_COLUMNS)


@resources_app.command("apply")
def apply(
    ctx: typer.Context,
    report_id: Annotated[int, typer.Argument(min=1, help="the resource report")],
    output: OutputOption = "table",
) -> None:
    """Submit the one change that sets a report's accepted recommendations on the scheduler;
    it waits for another operator's approval."""
    change = api(ctx).request("POST", f"/api/v1/resources/reports/{report_id}/apply")
    if output.lower() != "table":
        emit(change, output)
        return
    stdout.print(
        f"change {change['id']} ({change['state']}): {change['title']} on {change['selector']}"
    )
    stderr.print(f"review it: fleetops change show {change['id']}, or /changes/{change['id']}")


@resources_app.command("decide")
def decide(
    ctx: typer.Context,
    recommendation_id: Annotated[int, typer.Argument(min=1, help="the recommendation")],
    decision: Annotated[str, typer.Argument(help="accept or reject")],
    reason: Annotated[str, typer.Option(help="kept in the audit record")] = "",
    output: OutputOption = "table",
) -> None:
    """Accept or reject one recommendation (operators and admins)."""
    if decision not in ("accept", "reject"):
        fail(f"unknown decision {decision!r}; expected accept or reject", EXIT_USAGE)
    row = api(ctx).request(
        "POST",
        f"/api/v1/resources/recommendations/{recommendation_id}/{decision}",
        json={"reason": reason},
    )
    emit(row, output, ADVICE_COLUMNS)


from fleetops.analytics.resources import reports_cli  # noqa: E402

reports_cli.register(resources_app)
