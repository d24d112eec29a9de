"""`fleetops predict disks|evaluate-disks` as a user runs them: outputs, exit codes, messages."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_USAGE
from tests.devices.factory import seed
from tests.fixtures.server import cli_env, cli_ok, run_cli

SMART = Path(__file__).resolve().parents[4] / "shared" / "data" / "smart"
shared = pytest.mark.skipif(
    not SMART.is_dir(), reason=f"the Backblaze SMART sample is not at {SMART}"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path / "state")


@shared
def test_disks_ranks_the_days_drives_as_json(env: dict[str, str]) -> None:
    result = run_cli(
        env, "predict", "disks", "--history", str(SMART), "--as-of", "2013-04-20",
        "--top", "5", "-o", "json", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 5
    assert set(rows[0]) == {"serial_number", "model", "score", "predicted_failure"}
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    on_day = duckdb.sql(
        f"select serial_number from read_csv('{SMART}/2013-04-20.csv.gz') "
    ).fetchall()
    assert {row["serial_number"] for row in rows} <= {s for (s,) in on_day}


@shared
def test_evaluate_disks_counts_the_test_failures(env: dict[str, str]) -> None:
    result = run_cli(
        env, "predict", "evaluate-disks", "--history", str(SMART), "--train-until", "2013-04-16",
        "--test-until", "2013-04-22", "-o", "json", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ((failures,),) = duckdb.sql(
        f"select sum(failure) from read_csv('{SMART}/2013-04-*.csv.gz') "
        "where date between '2013-04-17' and '2013-04-22'"
    ).fetchall()
    assert report["model"]["failures"] == report["baseline"]["failures"] == failures == 15
    assert report["split"]["test"] == ["2013-04-17", "2013-04-22"]
    for figures in (report["model"], report["baseline"]):
        assert figures["hits"] <= min(figures["failures"], figures["flagged_drives"])


def test_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    missing = run_cli(
        env, "predict", "disks", "--history", str(tmp_path / "no"), "--as-of", "2013-04-10"
    )
    assert missing.returncode == EXIT_NOT_FOUND
    assert "no such directory" in missing.stderr
    bad_date = run_cli(env, "predict", "disks", "--history", str(tmp_path), "--as-of", "April")
    assert bad_date.returncode == EXIT_USAGE
    assert "--as-of 'April': expected a date" in bad_date.stderr
    (tmp_path / "2013-04-10.csv").write_text(
        "date,serial_number,model,failure,smart_5_raw\n2013-04-10,A,M,0,1\n2013-04-10,B,M,0,x\n"
    )
    malformed = run_cli(
        env, "predict", "evaluate-disks", "--history", str(tmp_path), "--train-until", "2013-04-09"
    )
    assert malformed.returncode == EXIT_ERROR
    assert "2013-04-10.csv line 3: smart_5_raw 'x': not a number" in malformed.stderr


@shared
def test_disks_reports_the_flagged_drives_of_the_fleet_as_findings(
    db_url: str, tmp_path: Path
) -> None:
    env = cli_env(db_url, tmp_path / "state", FLEETOPS_ENGINE_ENABLED="false")
    seed(db_url, "h001", "h002")
    ranked = run_cli(
        env, "predict", "disks", "--history", str(SMART), "--as-of", "2013-04-20", "-o", "json",
        timeout=600,
    )  # fmt: skip
    assert ranked.returncode == 0, ranked.stderr
    rows = json.loads(ranked.stdout)
    flagged = [r["serial_number"] for r in rows if r["predicted_failure"]]
    calm = [r["serial_number"] for r in rows if not r["predicted_failure"]]
    assert len(flagged) >= 3
    drives = tmp_path / "drives.csv"
    drives.write_text(
        "serial_number,hostname\n"
        f"{flagged[0]},h001\n{flagged[1]},h001\n{calm[0]},h002\n{flagged[2]},ghost\n"
    )
    result = run_cli(
        env, "predict", "disks", "--history", str(SMART), "--as-of", "2013-04-20",
        "--report", str(drives), "--top", "1", timeout=600,
    )  # fmt: skip
    assert result.returncode == EXIT_ERROR, result.stderr
    assert "reported 2 drive(s) predicted to fail on 1 host(s)" in result.stderr
    assert "not reported for 1 host(s)" in result.stderr
    assert "ghost: DeviceNotFound: host 'ghost' not found" in result.stderr
    found = json.loads(cli_ok(env, "finding", "list", "-o", "json"))["items"]
    assert sorted((f["entity"], f["details"]["component"]) for f in found) == sorted(
        [("h001", flagged[0]), ("h001", flagged[1])]
    )
    assert {f["details"]["signature"] for f in found} == {"disk_failure_predicted"}
    bad = tmp_path / "bad.csv"
    bad.write_text("serial_number,hostname\nZ1,\n")
    refused = run_cli(
        env, "predict", "disks", "--history", str(SMART), "--as-of", "2013-04-20",
        "--report", str(bad),
    )  # fmt: skip
    assert refused.returncode == EXIT_USAGE
    assert f"{bad}:2: a serial number and a hostname" in refused.stderr
