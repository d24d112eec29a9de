"""`fleetops storage analyze` as a user runs it: a real process, the shared fsimages, the
report kept on the server with --save, and precise errors with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_NOT_FOUND
from tests.fixtures.server import cli_env, cli_ok, run_cli

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "fsimage"
SMALL = DATA / "fsi_small.img"


@pytest.mark.skipif(not SMALL.is_file(), reason=f"{SMALL} (the shared data) is absent")
def test_an_fsimage_is_analysed_and_its_report_kept(db_url: str, tmp_path: Path) -> None:
    env = cli_env(db_url, tmp_path / "data")
    out = cli_ok(env, "storage", "analyze", str(SMALL), "-o", "json", "--save")
    report = json.loads(out)
    totals = report["totals"]
    # hfsa's published figures for this image: 11 files, 8 directories, 331 MiB, 12 blocks.
    assert (totals["files"], totals["directories"]) == (11, 8)
    assert (totals["bytes"], totals["blocks"]) == (348_019_712, 12)
    assert set(report["seconds"]) == {"read", "analyse"}
    kept = json.loads(cli_ok(env, "audit", "list", "-o", "json"))
    assert [r["action"] for r in kept["items"] if r["entity_type"] == "storage_report"] == [
        "storage.report"
    ]
    table = cli_ok(env, "storage", "analyze", str(SMALL))
    assert "fsi_small.img: 11 files, 8 directories, 331.9 MiB" in table


def test_bad_inputs_say_what_and_where(db_url: str, tmp_path: Path) -> None:
    env = cli_env(db_url, tmp_path / "data")
    missing = run_cli(env, "storage", "analyze", str(tmp_path / "nothing.img"))
    assert missing.returncode == EXIT_NOT_FOUND
    assert "nothing.img: no such file" in missing.stderr
    odd = tmp_path / "notes.txt"
    odd.write_text("hello\n")
    unknown = run_cli(env, "storage", "analyze", str(odd))
    assert unknown.returncode == EXIT_ERROR
    assert "cannot tell what this input is" in unknown.stderr
    if SMALL.is_file():
        cut = tmp_path / "cut.img"
        cut.write_bytes(SMALL.read_bytes()[:900])
        truncated = run_cli(env, "storage", "analyze", str(cut))
        assert truncated.returncode == EXIT_ERROR
        assert "cut.img" in truncated.stderr
        assert truncated.stdout == ""  # never a partial report
