"""`fleetops anomaly nab|score` as a user runs them: outputs, exit codes and messages."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE
from tests.analytics.anomaly.test_nab import NAB
from tests.fixtures.server import cli_env, run_cli

START = datetime(2014, 1, 1)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path / "state")


def stamp(i: int) -> str:
    return (START + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S")


def write_series(path: Path, values: list[float]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{stamp(i)},{v}\n" for i, v in enumerate(values))
    path.write_text("timestamp,value\n" + rows)
    return path


def tiny_corpus(root: Path) -> tuple[Path, Path]:
    """One 200-row series with one window over rows 100..119."""
    write_series(root / "data/c/s.csv", [float(i % 7) for i in range(200)])
    labels = root / "labels.json"
    labels.write_text(json.dumps({"c/s.csv": [[stamp(100), stamp(119)]], "c/absent.csv": []}))
    return root / "data", labels


def test_score_adds_an_anomaly_score_column(env: dict[str, str], tmp_path: Path) -> None:
    values = [float(i % 7) for i in range(300)]
    values[250] = 60.0
    result = run_cli(env, "anomaly", "score", str(write_series(tmp_path / "s.csv", values)))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 300
    assert rows[0] == {"timestamp": stamp(0), "value": "0.0", "anomaly_score": "0.000000"}
    scores = [float(r["anomaly_score"]) for r in rows]
    assert all(0 <= s <= 1 for s in scores)
    assert scores.index(max(scores)) == 250


def test_score_errors_name_file_line_and_exit_code(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2014-01-01 00:05:00,1\n2014-01-01 00:00:00,2\n")
    out_of_order = run_cli(env, "anomaly", "score", str(bad))
    assert out_of_order.returncode == EXIT_ERROR
    assert f"{bad}:3" in out_of_order.stderr
    assert "time order" in out_of_order.stderr
    assert out_of_order.stdout == ""
    missing = run_cli(env, "anomaly", "score", str(tmp_path / "nope.csv"))
    assert missing.returncode == EXIT_NOT_FOUND
    wrong = run_cli(env, "anomaly", "score", str(bad), "-o", "yaml")
    assert wrong.returncode == EXIT_USAGE


def nab_json(env: dict[str, str], data: Path, labels: Path, *extra: str) -> dict[str, object]:
    args = ["anomaly", "nab", "--data", str(data), "--labels", str(labels), "-o", "json"]
    result = run_cli(env, *args, *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_nab_null_perfect_and_results(env: dict[str, str], tmp_path: Path) -> None:
    data, labels = tiny_corpus(tmp_path)
    assert nab_json(env, data, labels, "--detector", "null")["standard"] == 0.0
    perfect = nab_json(env, data, labels, "--detector", "perfect")
    assert perfect["reward_low_FN_rate"] == 100.0
    # a result file: a detection at the window's start, one false positive before it (row 50)
    results = tmp_path / "results/c/mine_s.csv"
    results.parent.mkdir(parents=True)
    lines = ["timestamp,value,anomaly_score"]
    lines += [f"{stamp(i)},0,{1.0 if i in (50, 100) else 0.0}" for i in range(200)]
    results.write_text("\n".join(lines) + "\n")
    report = nab_json(env, data, labels, "--results", str(tmp_path / "results"))
    # raw 1 - 0.11 = 0.89 against null -1 and perfect 1: 100 * 1.89 / 2
    assert report["standard"] == pytest.approx(94.5)
    # with false positives at 0.22, 0.78 scores 100 * 1.78 / 2
    assert report["reward_low_FP_rate"] == pytest.approx(89.0)


def test_nab_bad_inputs(env: dict[str, str], tmp_path: Path) -> None:
    data, labels = tiny_corpus(tmp_path)
    base = ["anomaly", "nab", "--data", str(data), "--labels", str(labels)]
    unknown = run_cli(env, *base, "--detector", "oracle")
    assert unknown.returncode == EXIT_USAGE
    assert "unknown --detector 'oracle'" in unknown.stderr
    both = run_cli(env, *base, "--detector", "null", "--results", str(tmp_path))
    assert both.returncode == EXIT_USAGE
    missing = run_cli(env, "anomaly", "nab", "--data", str(tmp_path / "x"), "--labels", str(labels))
    assert missing.returncode == EXIT_NOT_FOUND
    results = tmp_path / "results/c/s.csv"
    results.parent.mkdir(parents=True)
    results.write_text(f"timestamp,anomaly_score\n{stamp(0)},0\n{stamp(5)},0\n")
    shifted = run_cli(env, *base, "--results", str(tmp_path / "results"))
    assert shifted.returncode == EXIT_ERROR
    assert f"{results}:3" in shifted.stderr


def test_nab_on_the_real_corpus(env: dict[str, str]) -> None:
    if not (NAB / "data").is_dir():
        pytest.skip(f"NAB data not found at {NAB}")
    labels, profiles = NAB / "labels/combined_windows.json", NAB / "config/profiles.json"
    report = nab_json(env, NAB / "data", labels, "--profiles", str(profiles))
    assert set(report) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate", "details"}
    for profile in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        assert 0.0 < report[profile] < 100.0  # type: ignore[operator]
