"""`fleetops finding ...` as a user runs it: real processes through the in-process API."""

from __future__ import annotations

import getpass
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.findings.factory import lines_ref, seed
from tests.fixtures.server import cli_env, cli_ok, run_cli


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, "finding", *args)


def ok(env: dict[str, str], *args: str) -> str:
    return cli_ok(env, "finding", *args)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(db_url, tmp_path / "data", FLEETOPS_ENGINE_ENABLED="false")


def test_list_show_ack_resolve(env: dict[str, str], db_url: str) -> None:
    assert json.loads(ok(env, "list", "-o", "json"))["items"] == []  # migrates the database
    disk, flap = seed(
        db_url,
        {
            "severity": "critical",
            "evidence": [lines_ref(), {"type": "finding", "id": 99}],
            "details": {"errors": 12},
        },
        {"kind": "link_flap", "entity_type": "link", "entity": "sw1:eth1", "severity": "info"},
    )
    table = ok(env, "list")
    assert "h001: disk I/O errors" in table
    assert "link:sw1:eth1" in table
    assert [f["id"] for f in json.loads(ok(env, "list", "-o", "json"))["items"]] == [flap, disk]
    only = yaml.safe_load(
        ok(env, "list", "--severity", "critical", "--kind", "disk_slow", "-o", "yaml")
    )
    assert [f["id"] for f in only["items"]] == [disk]
    assert json.loads(ok(env, "list", "--entity", "sw1:eth1", "-o", "json"))["total"] == 1

    shown = ok(env, "show", str(disk))
    assert "evidence (newest last)" in shown
    assert "host=h001" in shown
    assert "errors" in shown
    assert json.loads(ok(env, "show", str(disk), "-o", "json"))["details"] == {"errors": 12}

    me = f"local:{getpass.getuser()}"
    assert ok(env, "ack", str(disk), "-m", "looking").strip() == (
        f"finding {disk}: acknowledged by {me}"
    )
    assert ok(env, "resolve", str(disk), "--reason", "swapped the disk").strip() == (
        f"finding {disk}: resolved by {me} — swapped the disk"
    )
    statuses = json.loads(ok(env, "list", "--status", "resolved", "-o", "json"))["items"]
    assert [(f["id"], f["resolution"]) for f in statuses] == [(disk, "swapped the disk")]


def test_exit_codes_and_messages(env: dict[str, str], db_url: str) -> None:
    ok(env, "list")
    [finding] = seed(db_url, {})
    missing = run(env, "show", "999")
    assert missing.returncode == 3
    assert "FindingNotFound: finding 999 not found" in missing.stderr
    no_reason = run(env, "resolve", str(finding))
    assert no_reason.returncode == 2
    assert "--reason" in no_reason.stderr
    blank = run(env, "resolve", str(finding), "--reason", " ")
    assert blank.returncode == 1
    assert "ValidationError: body.reason" in blank.stderr
    assert run(env, "list", "--status", "closed").returncode == 2
    ok(env, "resolve", str(finding), "-m", "false alarm")
    late = run(env, "ack", str(finding))
    assert late.returncode == 4
    assert f"TransitionRefused: ResolvedIsFinal: finding {finding} was resolved" in late.stderr
