"""`fleetops forecast usage|backtest`: capacity forecasts with intervals, and how good they are."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetops.kit.cli import OutputOption, emit, fail, stdout
from fleetops.kit.exitcodes import EXIT_NOT_FOUND, EXIT_USAGE, exit_code_for_status

if TYPE_CHECKING:
    from fleetops.analytics.forecast.series import RegularSeries

forecast_app = typer.Typer(
    help="Capacity forecasts with intervals and days until full, and their backtest.",
    no_args_is_help=True,
)
LEADS = (3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400)
StepOption = Annotated[
    str, typer.Option(help="resampling step (900, 15m, 1h) or auto: the median spacing, rounded")
]
GapOption = Annotated[
    str, typer.Option(help="interpolate gaps up to this long; longer stay missing")
]
SeasonOption = Annotated[
    str, typer.Option(help="season length in steps, or auto: a day for sub-daily steps")
]


def _seconds(text: str, what: str) -> int:
    from fleetops.analytics.forecast.series import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{what}: {exc}", EXIT_USAGE)


def _load(file: Path, step: str, max_gap: str) -> RegularSeries:
    from fleetops.analytics.forecast.series import auto_step, read_points, resample

    if not file.exists():
        fail(f"series {file} does not exist", EXIT_NOT_FOUND)
    points = read_points(file)
    seconds = auto_step(points) if step == "auto" else _seconds(step, "--step")
    return resample(points, step=seconds, max_gap=_seconds(max_gap, "--max-gap"))


def _season(text: str, step: int, points: int) -> int:
    from fleetops.analytics.forecast.model import detect_season

    if text == "auto":
        return detect_season(step, points)
    if not text.isdigit() or int(text) < 1:
        fail(f"--season: expected auto or a whole number of steps >= 1, not {text!r}", EXIT_USAGE)
    return int(text)


@forecast_app.command("usage")
def usage(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="series CSV: timestamp,value (ISO 8601 or epoch s)")],
    capacity: Annotated[float | None, typer.Option(help="when does usage reach this?")] = None,
    horizon: Annotated[str, typer.Option(help="how far ahead: 6h, 7d, 2w")] = "7d",
    season: SeasonOption = "auto",
    step: StepOption = "auto",
    max_gap: GapOption = "1h",
    report_to: Annotated[
        str | None,
        typer.Option(
            "--report",
            help="HOST:MOUNT the series is of: report a fill within two weeks as its finding "
            "(for the remediation rules; needs --capacity)",
        ),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Forecast a usage series: the forecast at a few lead times with its 80 % and 95 %
    intervals, and with --capacity the days until full (median, earliest, latest)."""
    from fleetops.analytics.forecast.exceptions import ForecastInputError
    from fleetops.analytics.forecast.report import usage_report

    ahead = _seconds(horizon, "--horizon")
    if report_to is not None:
        _where(report_to, capacity)
    try:
        series = _load(file, step, max_gap)
        steps = max(1, ahead // series.step)
        report = usage_report(
            series,
            season=_season(season, series.step, len(series.values)),
            horizon=steps,
            capacity=capacity,
            leads=LEADS,
        )
    except ForecastInputError as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))
    if report_to is not None:
        _report(ctx, report, report_to)
    if output.lower() != "table":
        emit(report, output)
        return
    _print_usage(report)


def _where(where: str, capacity: float | None) -> tuple[str, str]:
    host, _, mount = where.partition(":")
    if not host or not mount.startswith("/"):
        fail(f"--report {where!r}: expected HOST:MOUNT, e.g. dn-0001:/data1", EXIT_USAGE)
    if capacity is None:
        fail("--report needs --capacity: the finding says when the filesystem is full", EXIT_USAGE)
    return host, mount


def _report(ctx: typer.Context, report: dict[str, Any], where: str) -> None:
    """Send the forecast of HOST:MOUNT to the server; say on stderr whether it opened a
    finding (a fill within two weeks) or not."""
    from fleetops.kit.cli import api, stderr

    host, mount = _where(where, 1.0)
    body = {"source": "fill_forecast", "payload": {**report, "mount": mount}}
    answer: dict[str, Any] = api(ctx).post(f"/api/v1/devices/{host}/signals", body)
    said = (
        f"reported {mount} on {host}: {answer['findings'][0]['title']}"
        if answer["signals"]
        else f"{mount} on {host} does not fill within two weeks: nothing reported"
    )
    stderr.print(said, highlight=False, markup=False)


def _print_usage(report: dict[str, Any]) -> None:
    fit = report["fit"]
    stdout.print(
        f"{report['points']} steps of {report['step_s']} s to {report['last']['timestamp']} "
        f"(last {report['last']['value']:.4g}); season {fit['season']}, alpha {fit['alpha']}, "
        f"beta {fit['beta']}, gamma {fit['gamma']}, phi {fit['phi']}, sigma {fit['sigma']:.4g}"
    )
    stdout.print(
        f"{'ahead':>7} {'timestamp':<26} {'forecast':>10} {'80% band':>21} {'95% band':>21}"
    )
    for row in report["forecast"]:
        stdout.print(
            f"{row['ahead']:>7} {row['timestamp']:<26} {row['mean']:>10.4g} "
            f"{row['lo80']:>10.4g} {row['hi80']:>10.4g} {row['lo95']:>10.4g} {row['hi95']:>10.4g}"
        )
    full = report.get("days_until_full")
    if full is not None:
        stdout.print(
            f"days until {full['capacity']:g}: {_days(full['median'])} "
            f"(95%: {_days(full['earliest'])} .. {_days(full['latest'])})"
        )


def _days(value: float | None) -> str:
    return "not within the horizon" if value is None else f"{value:.2f}"


@forecast_app.command("backtest")
def backtest(
    files: Annotated[list[Path], typer.Argument(help="series CSVs: timestamp,value")],
    folds: Annotated[int, typer.Option(min=1, help="rolling origins per series")] = 4,
    horizon: Annotated[str, typer.Option(help="length of each test window")] = "1d",
    season: SeasonOption = "auto",
    step: StepOption = "auto",
    max_gap: GapOption = "1h",
    output: OutputOption = "table",
) -> None:
    """Rolling-origin backtest over one or more series: MAE, MAPE and 80 %/95 % interval
    coverage per lead time, for the model and a seasonal-naive and a linear-trend baseline."""
    from fleetops.analytics.forecast.backtest import backtest as run
    from fleetops.analytics.forecast.exceptions import ForecastInputError

    ahead = _seconds(horizon, "--horizon")
    try:
        loaded = [_load(file, step, max_gap) for file in files]
        steps = {s.step for s in loaded}
        if len(steps) > 1:
            fail(f"series resample to different steps {sorted(steps)}; give --step", EXIT_USAGE)
        first = loaded[0]
        shortest = min(len(s.values) for s in loaded)
        length = _season(season, first.step, shortest - folds * max(1, ahead // first.step))
        results = run(
            [(str(f), s.values) for f, s in zip(files, loaded, strict=True)],
            step=first.step,
            season=length,
            horizon=max(1, ahead // first.step),
            folds=folds,
        )
    except ForecastInputError as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))
    report = {"series": len(files), "step_s": first.step, "season": length, "folds": folds}
    report["horizon_steps"] = max(1, ahead // first.step)
    if output.lower() != "table":
        emit({**report, "results": results}, output)
        return
    _print_backtest(report, results)


def _print_backtest(report: dict[str, Any], results: dict[str, Any]) -> None:
    stdout.print(
        f"{report['series']} series, step {report['step_s']} s, season {report['season']}, "
        f"{report['folds']} folds of {report['horizon_steps']} steps"
    )
    stdout.print(
        f"{'model':<15} {'ahead':>7} {'n':>6} {'MAE':>9} {'MAPE%':>8} {'cov80':>6} {'cov95':>6}"
    )
    for model, buckets in results.items():
        for label, m in buckets.items():
            mape = "-" if m["mape"] is None else f"{m['mape']:.1f}"
            mae = "-" if m["mae"] is None else f"{m['mae']:.4g}"
            c80 = "-" if m["coverage_80"] is None else f"{m['coverage_80']:.2f}"
            c95 = "-" if m["coverage_95"] is None else f"{m['coverage_95']:.2f}"
            stdout.print(f"{model:<15} {label:>7} {m['n']:>6} {mae:>9} {mape:>8} {c80:>6} {c95:>6}")
