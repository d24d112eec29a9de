"""`fleetops resources recommend | decide | apply` as a user runs them, on the local database."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_USAGE
from tests.analytics.resources.test_reports import LETTERS, small_trace
from tests.analytics.resources.test_traces import write_trace
from tests.fixtures.server import run_cli


def env(tmp_path: Path) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    found["FLEETOPS_DATA_DIR"] = str(tmp_path / "data")
    found["FLEETOPS_CLI_PERSIST_SECONDS"] = "0"  # no local server left behind
    return found


def test_a_report_is_kept_decided_and_its_apply_refused_with_why(tmp_path: Path) -> None:
    trace = small_trace(tmp_path / "trace")
    kept = run_cli(env(tmp_path), "resources", "recommend", str(trace), "--method", "krr",
                   "-o", "json")  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    report = json.loads(kept.stdout)
    assert (report["source"], report["method"], report["key"]) == ("trace", "krr", "task")
    assert len(report["recommendations"]) == 2 * len(LETTERS)
    first = report["recommendations"][0]["id"]
    table = run_cli(env(tmp_path), "resources", "decide", str(first), "accept")
    assert table.returncode == 0, table.stderr
    assert "accepted" in table.stdout
    refused = run_cli(env(tmp_path), "resources", "apply", str(report["id"]))
    assert refused.returncode != 0
    assert refused.stderr.startswith("error:"), refused.stderr
    assert "Traceback" not in refused.stderr


def test_bad_input_says_what_and_where(tmp_path: Path) -> None:
    bad = write_trace(
        tmp_path / "t", "0,j_1,M1,30,50,0.5,1\n", "0,j_1,M1,i1,-30,10,0.1\n", gz=False
    )
    result = run_cli(env(tmp_path), "resources", "recommend", str(bad))
    assert result.returncode == EXIT_ERROR
    assert "batch_instances_x.csv line 1: duration_s '-30': negative" in result.stderr
    unknown = run_cli(env(tmp_path), "resources", "recommend", str(bad), "--method", "p99")
    assert unknown.returncode == EXIT_USAGE
    assert "unknown --method 'p99'" in unknown.stderr
