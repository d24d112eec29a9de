"""`fleetops resources evaluate`: recommenders learned on one period, replayed on another."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fleetops.kit.cli import OutputOption, emit, fail, stdout
from fleetops.kit.exitcodes import EXIT_USAGE, exit_code_for_status

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
    from fleetops.analytics.resources.evaluate import evaluate as run
    from fleetops.analytics.resources.exceptions import TraceError, TraceNotFound

    if key not in KEYS:
        fail(f"unknown --key {key!r}; expected one of {', '.join(KEYS)}", EXIT_USAGE)
    same = train.resolve() == test.resolve()
    if same and split_at is None:
        fail("--train and --test are the same directory: give --split-at SECONDS", EXIT_USAGE)
    try:
        report = run(train, test, split_at=split_at if same else None, key=key)
    except (TraceError, TraceNotFound) as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    if output.lower() != "table":
        emit(report, output)
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    rows = [{"method": "request (reference)", **_cells(report["request"])}]
    rows += [{"method": name, **_cells(figures)} for name, figures in report["methods"].items()]
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


def _cells(figures: dict[str, dict[str, float]]) -> dict[str, str]:
    return {
        f"{resource}_{name}": f"{figures[resource][field]:.1%}"
        for resource in ("cpu", "mem")
        for name, field in (("slack", "slack"), ("violations", "violation_rate"))
    }
