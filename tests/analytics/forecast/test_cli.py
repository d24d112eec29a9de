"""`fleetops forecast usage|backtest` as a user runs them: outputs, exit codes and messages."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE
from tests.devices.factory import seed
from tests.fixtures.server import cli_env, cli_ok, run_cli

NAB = Path(__file__).resolve().parents[4] / "shared/data/nab/data/realAWSCloudwatch"
REAL = NAB / "ec2_cpu_utilization_825cc2.csv"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path / "state")


def write_series(path: Path, values: list[float], step: int = 3600) -> Path:
    rows = "".join(f"{i * step},{v!r}\n" for i, v in enumerate(values))
    path.write_text("timestamp,value\n" + rows)
    return path


def run_json(env: dict[str, str], *args: str) -> Any:
    result = run_cli(env, "forecast", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_usage_days_until_full_on_a_line(env: dict[str, str], tmp_path: Path) -> None:
    # Hourly 10, 10.5 .. 59.5: 100 is 81 hours, 3.375 days, after the last point.
    line = write_series(tmp_path / "line.csv", [10 + 0.5 * i for i in range(100)])
    report = run_json(env, "usage", str(line), "--capacity", "100", "--season", "1")
    assert report["days_until_full"]["median"] == pytest.approx(3.375)
    assert report["last"] == {"timestamp": "1970-01-05T03:00:00+00:00", "value": 59.5}
    week = report["forecast"][-1]
    assert week["ahead"] == "7d"
    assert week["mean"] == pytest.approx(59.5 + 0.5 * 168)
    short = run_json(env, "usage", str(line), "--capacity", "100", "--horizon", "2d")
    assert short["days_until_full"]["median"] is None
    table = run_cli(env, "forecast", "usage", str(line), "--capacity", "100", "--horizon", "2d")
    assert "days until 100: not within the horizon" in table.stdout


@pytest.mark.skipif(not REAL.exists(), reason="shared NAB data absent (../shared/data/nab)")
def test_usage_on_a_real_series(env: dict[str, str]) -> None:
    report = run_json(env, "usage", str(REAL), "--capacity", "100")
    # The file ends at 2014-04-24 00:09:00 (96.584); 5-minute bins start on the 5 minutes.
    assert report["step_s"] == 300
    assert report["last"] == {"timestamp": "2014-04-24T00:05:00+00:00", "value": 96.584}
    assert report["fit"]["season"] == 288
    rows = report["forecast"]
    assert [r["ahead"] for r in rows] == ["1h", "6h", "1d", "3d", "7d"]
    for row in rows:
        assert row["lo95"] < row["lo80"] < row["mean"] < row["hi80"] < row["hi95"]
    widths = [r["hi95"] - r["lo95"] for r in rows]
    assert widths == sorted(widths)
    full = report["days_until_full"]
    assert full["earliest"] is not None
    assert full["median"] is None or full["median"] >= full["earliest"]


def test_backtest_figures_on_a_pure_season(env: dict[str, str], tmp_path: Path) -> None:
    # A daily pattern repeated exactly, plus a slope: seasonal naive misses by exactly the slope
    # times 24 h at every lead; the line misses by the pattern, computed here with polyfit.
    hours = np.arange(24 * 12)
    pattern = 10 * np.sin(2 * np.pi * hours / 24) + 0.05 * hours + 50
    path = write_series(tmp_path / "s.csv", [float(v) for v in pattern])
    report = run_json(env, "backtest", str(path), "--folds", "2", "--horizon", "1d")
    assert (report["season"], report["horizon_steps"], report["step_s"]) == (24, 24, 3600)
    naive = report["results"]["seasonal_naive"]
    assert naive["<=1d"]["mae"] == pytest.approx(0.05 * 24)
    expected = []
    for origin in (24 * 10, 24 * 11):
        slope, intercept = np.polyfit(hours[:origin], pattern[:origin], 1)
        ahead = hours[origin : origin + 24]
        expected.extend(np.abs(pattern[origin : origin + 24] - (intercept + slope * ahead)))
    lines = report["results"]["linear_trend"]
    pooled = sum(lines[b]["mae"] * lines[b]["n"] for b in lines) / 48
    assert pooled == pytest.approx(float(np.mean(expected)))
    ets = report["results"]["ets"]
    assert sum(b["n"] for b in ets.values()) == 48
    assert max(b["mae"] for b in ets.values()) < 0.05 * 24 / 10


@pytest.mark.skipif(not NAB.exists(), reason="shared NAB data absent (../shared/data/nab)")
def test_backtest_table_on_real_series(env: dict[str, str]) -> None:
    result = run_cli(env, "forecast", "backtest", str(REAL), "--folds", "2", "--horizon", "6h")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 series, step 300 s, season 288, 2 folds of 72 steps")
    models = {line.split()[0] for line in result.stdout.splitlines()[2:]}
    assert models == {"ets", "seasonal_naive", "linear_trend"}


def test_errors_and_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2014-01-01 00:05:00,1\n2014-01-01 00:00:00,2\n")
    out_of_order = run_cli(env, "forecast", "usage", str(bad))
    assert out_of_order.returncode == EXIT_ERROR
    assert f"{bad}:3" in out_of_order.stderr
    assert "time order" in out_of_order.stderr
    assert out_of_order.stdout == ""
    missing = run_cli(env, "forecast", "usage", str(tmp_path / "nope.csv"))
    assert missing.returncode == EXIT_NOT_FOUND
    line = write_series(tmp_path / "l.csv", [float(i) for i in range(30)])
    for args in (("--horizon", "soon"), ("--season", "daily"), ("--step", "0")):
        usage = run_cli(env, "forecast", "usage", str(line), *args)
        assert usage.returncode == EXIT_USAGE, args
    short = run_cli(env, "forecast", "backtest", str(line), "--folds", "4")
    assert short.returncode == EXIT_ERROR
    assert "too short" in short.stderr
    assert math.isfinite(run_json(env, "usage", str(line))["fit"]["sigma"])


def test_usage_reports_a_filesystem_filling_within_two_weeks(db_url: str, tmp_path: Path) -> None:
    env = cli_env(db_url, tmp_path / "state", FLEETOPS_ENGINE_ENABLED="false")
    seed(db_url, "h001")
    line = write_series(tmp_path / "line.csv", [10 + 0.5 * i for i in range(100)])  # 3.4 days
    args = ("forecast", "usage", str(line), "--capacity", "100", "--season", "1")
    filling = run_cli(env, *args, "--report", "h001:/data1")
    assert filling.returncode == 0, filling.stderr
    assert "reported /data1 on h001: h001: /data1 predicted full in 3.4 days" in filling.stderr
    [found] = json.loads(cli_ok(env, "finding", "list", "-o", "json"))["items"]
    assert (found["entity"], found["details"]["signature"], found["details"]["mount"]) == (
        "h001",
        "filesystem_fill_predicted",
        "/data1",
    )
    flat = write_series(tmp_path / "flat.csv", [10.0 + 0.001 * i for i in range(100)])
    calm = run_cli(env, "forecast", "usage", str(flat), "--capacity", "100", "--report", "h001:/d2")
    assert calm.returncode == 0, calm.stderr
    assert "/d2 on h001 does not fill within two weeks: nothing reported" in calm.stderr
    for where, needs in (("h001", "expected HOST:MOUNT"), ("h001:data", "expected HOST:MOUNT")):
        bad = run_cli(env, *args, "--report", where)
        assert bad.returncode == EXIT_USAGE
        assert needs in bad.stderr
    no_capacity = run_cli(env, "forecast", "usage", str(line), "--report", "h001:/data1")
    assert no_capacity.returncode == EXIT_USAGE
    assert "--report needs --capacity" in no_capacity.stderr
    ghost = run_cli(env, *args, "--report", "ghost:/data1")
    assert ghost.returncode != 0
    assert "host 'ghost' not found" in ghost.stderr
