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
    ctx: typer.Context,
    history: HistoryOption,
    as_of: Annotated[str, typer.Option(help="the day to rank (YYYY-MM-DD); later days unread")],
    horizon: HorizonOption = 14,
    top: Annotated[int | None, typer.Option(min=1, help="show the N riskiest drives")] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="CSV `serial_number,hostname` of the fleet's drives: report the flagged ones "
            "as their hosts' findings (for the remediation rules)",
        ),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Learn from the days up to --as-of, then rank that day's drives, riskiest first."""
    from fleetops.analytics.predict.service import rank

    day = _date(as_of, "--as-of")
    drives = _drive_map(report) if report is not None else None
    rows = _run(lambda: rank(history, as_of=day, horizon=horizon))
    if drives is not None:
        _report(ctx, rows, drives, horizon=horizon, as_of=day)
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


def _drive_map(path: Path) -> dict[str, str]:
    """serial -> hostname from a `serial_number,hostname` CSV; a bad line names itself."""
    import csv

    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"serial_number", "hostname"} <= set(
                reader.fieldnames
            ):
                fail(f"{path}:1: expected the header `serial_number,hostname`", EXIT_USAGE)
            drives: dict[str, str] = {}
            for row in reader:
                serial, host = (row.get("serial_number") or "").strip(), (row.get("hostname") or "")
                if not serial or not host.strip():
                    fail(f"{path}:{reader.line_num}: a serial number and a hostname", EXIT_USAGE)
                drives[serial] = host.strip()
            return drives
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", EXIT_USAGE)
    except (UnicodeDecodeError, csv.Error) as exc:
        fail(f"{path}: not a CSV of UTF-8 text ({exc})", EXIT_USAGE)


def _report(
    ctx: typer.Context,
    rows: list[dict[str, Any]],
    drives: dict[str, str],
    *,
    horizon: int,
    as_of: date,
) -> None:
    """Send each host's flagged drives to the server; say what was reported, on stderr."""
    from fleetops.kit.cli import CommandFailed, api, stderr

    by_host: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        host = drives.get(row["serial_number"])
        if host is not None and row["predicted_failure"]:
            extra = {"horizon_days": horizon, "as_of": as_of.isoformat()}
            by_host.setdefault(host, []).append({**row, **extra})
    client = api(ctx)
    refused: list[str] = []
    sent = hosts = 0
    for host, flagged in sorted(by_host.items()):
        body = {"source": "disk_prediction", "payload": flagged}
        try:
            client.post(f"/api/v1/devices/{host}/signals", body)
        except CommandFailed as exc:
            refused.append(f"{host}: {exc}")
            continue
        sent, hosts = sent + len(flagged), hosts + 1
    stderr.print(
        f"reported {sent} drive(s) predicted to fail on {hosts} host(s)",
        highlight=False,
        markup=False,
    )
    if refused:
        fail(f"not reported for {len(refused)} host(s)", lines=refused)


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
