"""`fleetops storage analyze` as a user runs it: a real process, the shared fsimages, the
report kept on the server with --save, and precise errors with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_NOT_FOUND
from tests.analytics.storage.trees import trash_tree
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


def test_a_directory_is_scanned_and_its_trash_layers_found(db_url: str, tmp_path: Path) -> None:
    tree = trash_tree(tmp_path / "fs")
    env = cli_env(db_url, tmp_path / "data")
    report = json.loads(cli_ok(env, "storage", "analyze", str(tree.root), "-o", "json"))
    assert report["totals"]["files"] == len(tree.files)
    assert report["totals"]["bytes"] == sum(tree.files.values())
    bins = {b["user"]: b for b in report["recycle_bins"]["bins"]}
    # alice: Current 1,000 + 4,096, and the 512 of the trash deleted into it; a checkpoint of
    # 2,048 from 2025-01-02, long past a day's retention.
    alice = bins["alice"]
    assert (alice["current_bytes"], alice["checkpoints"], alice["checkpoint_bytes"]) == (
        1000 + 4096 + 512,
        1,
        2048,
    )
    assert alice["layered_bytes"] == 512
    assert bins["bob"]["current_bytes"] == 10_000
    assert report["recycle_bins"]["over_retention_raw_bytes"] == 2048  # one replica on a disk
    assert report["recycle_bins"]["layered_raw_bytes"] == 512
    entries = tmp_path / "fs.parquet"
    said = cli_ok(env, "storage", "scan", str(tree.root), "--out", str(entries))
    assert f"{len(tree.files) + len(tree.dirs):,} entries" in said
    again = json.loads(cli_ok(env, "storage", "analyze", str(entries), "-o", "json"))
    assert again["recycle_bins"] == report["recycle_bins"]  # the entries file reads the same
