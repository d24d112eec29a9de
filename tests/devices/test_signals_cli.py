"""`fleetops device signals ingest|scrape` as a user runs them: real processes through the
in-process API on the local database, a real node_exporter for `scrape`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.devices import test_signals_node_exporter as node_exporter_tests
from tests.devices.factory import seed
from tests.devices.test_signals_edac import write_edac
from tests.fixtures.server import cli_env, free_port, run_cli

DATA = Path(__file__).parent / "data"


# The real node_exporter on a sysfs tree, as its own tests run it.
sysfs = node_exporter_tests.sysfs
exporter = node_exporter_tests.exporter


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_cli(env, "device", "signals", *args, stdin=stdin)


def ok(env: dict[str, str], *args: str, stdin: str = "") -> str:
    result = run(env, *args, stdin=stdin)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only: the API behind these commands is tested on both databases (test_signals)."""
    target = tmp_path / "fleetops.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    seed(db_url, "h001")
    return cli_env(db_url, tmp_path / "data", FLEETOPS_ENGINE_ENABLED="false")


def test_ingest_smart_file_then_again_as_json(env: dict[str, str]) -> None:
    failing = str(DATA / "smartctl_ata_failing.json")
    table = ok(env, "ingest", "--host", "h001", "--source", "smart", failing)
    assert "smart_media_errors" in table
    assert "ZA1FAILING" in table
    assert table.rstrip().endswith(
        "h001: 3 problem(s) in smart output; 3 finding(s) opened, 0 bumped"
    )
    again = json.loads(
        ok(env, "ingest", "--host", "h001", "--source", "smart", failing, "-o", "json")
    )
    assert (again["opened"], [f["occurrences"] for f in again["findings"]]) == ([], [2, 2, 2])
    healthy = ok(
        env,
        "ingest",
        "--host",
        "h001",
        "--source",
        "smart",
        str(DATA / "smartctl_ata_healthy.json"),
    )
    assert healthy.strip() == "h001: no hardware problem in smart output"


def test_ingest_sel_from_stdin_keeps_state(env: dict[str, str], tmp_path: Path) -> None:
    state = tmp_path / "state" / "h001.sel.json"
    sel = (DATA / "ipmitool_sel_elist.txt").read_text()
    args = ("ingest", "--host", "h001", "--source", "ipmi_sel", "--state", str(state), "-")
    first = ok(env, *args, stdin=sel)
    assert first.rstrip().endswith(
        "h001: 9 problem(s) in ipmi_sel output; 7 finding(s) opened, 0 bumped"
    )
    assert json.loads(state.read_text()) == {"host": "h001", "source": "ipmi_sel", "payload": sel}
    more = sel + "  11 | 04/01/26 | 11:00:00 UTC | Memory #0x53 | Uncorrectable ECC | Asserted\n"
    second = ok(env, *args, stdin=more)
    assert "h001: 1 problem(s) in ipmi_sel output; 0 finding(s) opened, 1 bumped" in second
    assert ok(env, *args, stdin=more).strip() == "h001: no hardware problem in ipmi_sel output"


def test_ingest_edac_reads_a_sysfs_tree(env: dict[str, str], tmp_path: Path) -> None:
    root, state = tmp_path / "sys", tmp_path / "edac.state"
    write_edac(root, 0, ce=3, ue=0, dimms={0: (3, 0)})
    args = (
        "ingest",
        "--host",
        "h001",
        "--source",
        "edac",
        "--state",
        str(state),
        str(root),
        "-o",
        "json",
    )
    first = json.loads(ok(env, *args))
    assert [(f["details"]["signature"], f["details"]["count"]) for f in first["findings"]] == [
        ("edac_ce", 3)
    ]
    assert json.loads(ok(env, *args))["signals"] == 0
    write_edac(root, 0, ce=4, ue=1, dimms={0: (4, 1)})
    third = json.loads(ok(env, *args))
    assert [(f["details"]["signature"], f["details"]["count"]) for f in third["findings"]] == [
        ("edac_ce", 1),
        ("edac_ue", 1),
    ]


def test_scrape_a_real_exporter(env: dict[str, str], exporter: str, tmp_path: Path) -> None:
    state = tmp_path / "scrape.state"
    args = ("scrape", "--host", "h001", "--url", exporter, "--state", str(state), "-o", "json")
    first = json.loads(ok(env, *args))
    assert sorted(f["details"]["signature"] for f in first["findings"]) == [
        "edac_ce",
        "fan",
        "nic_down",
        "thermal",
    ]
    kept = json.loads(state.read_text())["payload"]
    assert kept.splitlines()
    assert all("node_edac_" in line for line in kept.splitlines())
    second = json.loads(ok(env, *args))
    assert sorted(f["details"]["signature"] for f in second["findings"]) == [
        "fan",
        "nic_down",
        "thermal",
    ]


def test_errors_are_one_line_with_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    failed = run(env, "ingest", "--host", "h001", "--source", "smart", str(bad))
    assert (failed.returncode, failed.stderr.strip()) == (
        1,
        "error: SignalError: smartctl output is not JSON (line 1, column 2: Expecting property "
        "name enclosed in double quotes); run `smartctl -j -a /dev/X`",
    )
    ghost = run(
        env,
        "ingest",
        "--host",
        "ghost",
        "--source",
        "smart",
        str(DATA / "smartctl_ata_failing.json"),
    )
    assert (ghost.returncode, ghost.stderr.strip()) == (
        3,
        "error: DeviceNotFound: host 'ghost' not found",
    )
    url = f"http://127.0.0.1:{free_port()}/metrics"
    down = run(env, "scrape", "--host", "h001", "--url", url, "--timeout", "2")
    assert down.returncode == 1
    assert down.stderr.startswith(f"error: cannot scrape {url}: ")
    no_edac = run(env, "ingest", "--host", "h001", "--source", "edac", str(tmp_path))
    assert no_edac.returncode == 1
    assert "error: no EDAC memory controllers under" in no_edac.stderr
    state = tmp_path / "other.state"
    state.write_text(json.dumps({"host": "h002", "source": "ipmi_sel", "payload": ""}))
    wrong = run(
        env,
        "ingest",
        "--host",
        "h001",
        "--source",
        "ipmi_sel",
        "--state",
        str(state),
        "-",
        stdin="",
    )
    assert (wrong.returncode, wrong.stderr.strip()) == (
        2,
        f"error: state file {state} is not for host h001 and source ipmi_sel",
    )
    missing = run(env, "ingest", "--host", "h001", "--source", "smart", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
