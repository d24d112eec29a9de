"""`fleetops predict`: drives ranked by failure risk from SMART history, and its evaluation."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from fleetops.kit.cli import OutputOption, emit, fail, stdout
from fleetops.kit.exitcodes import EXIT_USAGE, exit_code_for_status

predict_app = typer.Typer(
    help="Failure prediction: disks ranked by risk from their daily SMART history.",
    no_args_is_help=True,
)
HistoryOption = Annotated[
    Path, typer.Option(help="directory of daily SMART files, YYYY-MM-DD.csv[.gz] (Backblaze)")
]
HorizonOption = Annotated[
    int, typer.Option(min=1, max=365, help="a drive is at risk if it fails within these days")
]


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: expected a date YYYY-MM-DD", EXIT_USAGE)


def _run(call: Any) -> Any:
    from fleetops.analytics.predict.exceptions import HistoryError, HistoryNotFound

    try:
        return call()
    except (HistoryError, HistoryNotFound) as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


@predict_app.command("disks")
def disks(
    history: HistoryOption,
    as_of: Annotated[str, typer.Option(help="the day to rank (YYYY-MM-DD); later days unread")],
    horizon: HorizonOption = 14,
    top: Annotated[int | None, typer.Option(min=1, help="show the N riskiest drives")] = None,
    output: OutputOption = "table",
) -> None:
    """Learn from the days up to --as-of, then rank that day's drives, riskiest first."""
    from fleetops.analytics.predict.service import rank

    day = _date(as_of, "--as-of")
    rows = _run(lambda: rank(history, as_of=day, horizon=horizon))
    rows = rows[:top] if top else rows
    emit(
        rows,
        output,
        [
            ("serial", "serial_number"),
            ("model", "model"),
            ("score", "score"),
            ("predicted failure", "predicted_failure"),
        ],
    )


@predict_app.command("evaluate-disks")
def evaluate_disks(
    history: HistoryOption,
    train_until: Annotated[str, typer.Option(help="last training day; later days are the test")],
    horizon: HorizonOption = 14,
    test_until: Annotated[
        str | None, typer.Option(help="last test day (default: the last file)")
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Train up to --train-until, test on the later days: precision, recall and lead time per
    drive, next to the rule "SMART 5 or 197 raw > 0"."""
    from fleetops.analytics.predict.service import evaluate

    until = _date(train_until, "--train-until")
    last = _date(test_until, "--test-until") if test_until else None
    report = _run(lambda: evaluate(history, train_until=until, horizon=horizon, test_until=last))
    if output.lower() != "table":
        emit(report, output)
        return
    split = report["split"]
    stdout.print(
        f"train {split['train'][0]}..{split['train'][1]} ({split['train_failures']} failures), "
        f"test {split['test'][0]}..{split['test'][1]}, horizon {split['horizon_days']} days, "
        f"threshold {split['threshold']}",
        highlight=False,
    )
    rows = [
        {"method": "model", **report["model"]},
        {"method": "SMART 5 or 197 raw > 0", **report["baseline"]},
    ]
    emit(
        rows,
        "table",
        [
            ("method", "method"),
            ("failures", "failures"),
            ("flagged", "flagged_drives"),
            ("hits", "hits"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("median lead (days)", "median_lead_days"),
            ("hits with lead >= 7 d", "hits_with_lead_7_days"),
        ],
    )
