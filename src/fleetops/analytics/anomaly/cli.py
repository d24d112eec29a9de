"""`fleetops anomaly nab|score`: the streaming detector, and the benchmark that measures it."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from fleetops.kit.cli import OutputOption, emit, fail, stdout
from fleetops.kit.exitcodes import EXIT_NOT_FOUND, EXIT_USAGE, exit_code_for_status

anomaly_app = typer.Typer(
    help="Anomaly detection on metric series, scored with the Numenta Anomaly Benchmark.",
    no_args_is_help=True,
)
DETECTORS = ("fleetops", "null", "perfect")


def _exists(path: Path | None, what: str) -> None:
    if path is not None and not path.exists():
        fail(f"{what} {path} does not exist", EXIT_NOT_FOUND)


@anomaly_app.command("nab")
def nab(
    data: Annotated[Path, typer.Option(help="NAB data directory: <category>/<series>.csv")],
    labels: Annotated[Path, typer.Option(help="windows file, e.g. labels/combined_windows.json")],
    profiles: Annotated[
        Path | None, typer.Option(help="cost matrices, e.g. config/profiles.json")
    ] = None,
    results: Annotated[
        Path | None, typer.Option(help="score NAB result CSVs (anomaly_score) from this directory")
    ] = None,
    detector: Annotated[str, typer.Option(help="fleetops, null or perfect")] = "fleetops",
    output: OutputOption = "table",
) -> None:
    """Score a detector on a NAB corpus: each profile's normalised score (null 0, perfect 100)
    at the threshold that scores best over the whole corpus."""
    from fleetops.analytics.anomaly.benchmark import run_benchmark
    from fleetops.analytics.anomaly.exceptions import SeriesError

    if detector not in DETECTORS:
        fail(f"unknown --detector {detector!r}; expected one of {', '.join(DETECTORS)}", EXIT_USAGE)
    if results is not None and detector != "fleetops":
        fail("give either --results or --detector, not both", EXIT_USAGE)
    for path, what in ((data, "--data"), (labels, "--labels"), (profiles, "--profiles")):
        _exists(path, what)
    _exists(results, "--results")
    try:
        report = run_benchmark(data, labels, profiles=profiles, detector=detector, results=results)
    except SeriesError as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))
    if output.lower() != "table":
        emit(report, output)
        return
    _print(report)


def _print(report: dict[str, Any]) -> None:
    details = report["details"]
    stdout.print(
        f"{details['detector']}: {details['files']} series, {details['rows']} rows, "
        f"{details['windows']} anomaly windows"
    )
    stdout.print(f"{'profile':<20} {'score':>7} {'threshold':>10} {'tp':>4} {'fp':>5} {'fn':>4}")
    for name, figures in details["profiles"].items():
        threshold = "never" if figures["threshold"] is None else f"{figures['threshold']:.4f}"
        stdout.print(
            f"{name:<20} {report[name]:>7.2f} {threshold:>10} "
            f"{figures['tp']:>4} {figures['fp']:>5} {figures['fn']:>4}"
        )


@anomaly_app.command("score")
def score(
    file: Annotated[Path, typer.Argument(help="series CSV: timestamp,value in time order")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="csv or json", case_sensitive=False)
    ] = "csv",
) -> None:
    """Score a series point by point with the streaming detector: each row gains an
    `anomaly_score` in [0, 1], computed only from the rows before and at it."""
    from fleetops.analytics.anomaly.detectors import score_series
    from fleetops.analytics.anomaly.exceptions import SeriesError
    from fleetops.analytics.anomaly.series import read_series

    fmt = output.lower()
    if fmt not in ("csv", "json"):
        fail(f"unknown output format {output!r}; expected csv or json", EXIT_USAGE)
    _exists(file, "series")
    try:
        series = read_series(file)
    except SeriesError as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))
    scores = score_series(series.values)
    rows = zip(series.timestamps, series.values, scores, strict=True)
    if fmt == "json":
        emit([{"timestamp": t, "value": v, "anomaly_score": s} for t, v, s in rows], "json")
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score"])
    for stamp, value, anomaly in rows:
        writer.writerow([stamp.isoformat(sep=" "), repr(value), f"{anomaly:.6f}"])
