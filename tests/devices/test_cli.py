"""`fleetops device ...` as a user runs it: real processes through the in-process API."""

from __future__ import annotations

import getpass
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.devices.factory import seed
from tests.fixtures.server import cli_env, cli_ok, run_cli


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, "device", *args)


def ok(env: dict[str, str], *args: str) -> str:
    return cli_ok(env, "device", *args)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(db_url, tmp_path / "data", FLEETOPS_ENGINE_ENABLED="false")


def test_list_show_transition_history(env: dict[str, str], db_url: str) -> None:
    assert json.loads(ok(env, "list", "-o", "json"))["items"] == []  # migrates the database
    [finding] = seed(db_url, "h001", "h002", findings=1)
    me = f"local:{getpass.getuser()}"
    out = ok(
        env, "transition", "h001", "suspect", "--reason", "disk errors", "--evidence", str(finding)
    )
    assert out.strip() == f"h001: in_service → suspect by {me}"
    table = ok(env, "list")
    assert "by state: in_service 1, suspect 1" in table
    only = yaml.safe_load(ok(env, "list", "--state", "suspect", "-o", "yaml"))
    assert [d["hostname"] for d in only["items"]] == ["h001"]
    assert json.loads(ok(env, "list", "-s", "h002", "-o", "json"))["counts"]["in_service"] == 1
    shown = ok(env, "show", "h001")
    assert "in_service, draining" in shown
    assert "recent transitions" in shown
    out = ok(env, "transition", "h001", "retired", "-m", "scrap it", "--override")
    assert out.strip() == f"h001: suspect → retired (override) by {me}"
    history = json.loads(ok(env, "history", "h001", "-o", "json"))
    assert [(t["to_state"], t["evidence"]) for t in history["items"]] == [
        ("retired", []),
        ("suspect", [finding]),
    ]
    assert "scrap it" in ok(env, "history", "h001")


def test_exit_codes_and_messages(env: dict[str, str], db_url: str) -> None:
    ok(env, "list")
    seed(db_url, "h001")
    missing = run(env, "show", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (
        3,
        "error: DeviceNotFound: host 'nope' not found",
    )
    illegal = run(env, "transition", "h001", "isolated", "-m", "r")
    assert illegal.returncode == 4
    assert (
        "TransitionRefused: AllowedStep: h001 is in_service; it cannot become isolated"
        in illegal.stderr
    )
    assert run(env, "transition", "h001", "suspect").returncode == 2  # --reason is required
    assert run(env, "transition", "h001", "broken", "-m", "r").returncode == 2
