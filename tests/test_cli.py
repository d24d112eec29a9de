"""The `fleetops` command as a user runs it: real processes, real databases, real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from fleetops.db import make_engine
from fleetops.models import AuditRecord
from tests.fixtures.server import cli_env, running_server
from tests.fixtures.server import run_cli as run

DATA = Path(__file__).parent / "inventory" / "data"


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(db_url, tmp_path / "data", FLEETOPS_ADMIN_PASSWORD="first-admin-password")


def hostnames(env: dict[str, str], *args: str) -> list[str]:
    result = run(env, "host", "list", "-o", "json", *args)
    assert result.returncode == 0, result.stderr
    return [h["hostname"] for h in json.loads(result.stdout)["items"]]


@pytest.mark.parametrize(
    "args",
    [("host", "list"), ("host", "list", "-o", "json"), ("audit", "verify"), ("--help",)],
    ids=" ".join,
)
def test_a_successful_command_prints_nothing_on_stderr(
    db_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """The installed entry point, first run on a new data directory, as a user types it."""
    fleetops = Path(sys.executable).with_name("fleetops")
    env = cli_env(db_url, tmp_path / "data")
    result = subprocess.run(
        [str(fleetops), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout
    assert result.stderr == ""


def test_invalid_settings_are_named_in_one_line_each(db_url: str, tmp_path: Path) -> None:
    env = cli_env(
        db_url,
        tmp_path / "data",
        FLEETOPS_ISOLATION_WORKFLOW="site-isolate@1#md5:00",
        FLEETOPS_PROBATION_DAYS="-1",
    )
    result = run(env, "host", "list")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "error: invalid settings (environment or config file)"
    assert any(
        line.startswith("  FLEETOPS_ISOLATION_WORKFLOW: ") and "pin" in line for line in lines
    )
    assert any(line.startswith("  FLEETOPS_PROBATION_DAYS: ") for line in lines)


def test_import_ansible_ini_then_list_and_show(env: dict[str, str]) -> None:
    result = run(env, "host", "import", str(DATA / "hadoop.ini"))
    assert result.returncode == 0, result.stderr
    assert "created 5 hosts" in result.stdout
    assert hostnames(env) == ["dn-001", "dn-002", "dn-003", "dn-004", "nn-01"]
    assert hostnames(env, "-s", "group=datanodes except dn-00[3-4]") == ["dn-001", "dn-002"]
    shown = yaml.safe_load(run(env, "host", "show", "nn-01", "-o", "yaml").stdout)
    assert (shown["address"], shown["ssh_user"]) == ("10.1.0.10", "hdfs")
    dn = json.loads(run(env, "host", "show", "dn-001", "-o", "json").stdout)
    assert (dn["ssh_port"], dn["ssh_user"], dn["labels"]["tier"]) == (2222, "hadoop", "batch")
    again = run(env, "host", "import", str(DATA / "hadoop.ini"))
    assert "unchanged 5 hosts" in again.stdout


def test_import_netbox_csv(env: dict[str, str]) -> None:
    result = run(env, "host", "import", str(DATA / "netbox.csv"))
    assert result.returncode == 0, result.stderr
    gpu = json.loads(run(env, "host", "show", "gpu-002", "-o", "json").stdout)
    assert gpu["address"] == "10.9.1.2"
    assert gpu["model"] == "SYS-420GP"  # device types become hardware models
    assert gpu["state"] == "in_repair"
    assert "gpu" in gpu["groups"]


def test_broken_file_changes_nothing_and_names_its_lines(env: dict[str, str]) -> None:
    assert run(env, "host", "import", str(DATA / "hadoop.ini")).returncode == 0
    before = run(env, "host", "export", "-f", "yaml").stdout
    result = run(env, "host", "import", str(DATA / "broken.ini"))
    assert result.returncode == 1
    assert "line 3" in result.stderr
    assert "line 4" in result.stderr
    assert run(env, "host", "export", "-f", "yaml").stdout == before


def test_exit_codes(env: dict[str, str]) -> None:
    assert run(env, "host", "show", "nope").returncode == 3
    assert run(env, "host", "list", "-s", "rak=r1").returncode == 1
    assert "unknown key" in run(env, "host", "list", "-s", "rak=r1").stderr
    assert run(env, "host", "list", "-o", "xml").returncode == 2
    assert (
        run(
            env,
            "user",
            "create",
            "al",
            "--role",
            "developer",
            "--password-stdin",
            stdin="long-enough-password\n",
        ).returncode
        == 0
    )
    taken = run(
        env,
        "user",
        "create",
        "al",
        "--role",
        "developer",
        "--password-stdin",
        stdin="long-enough-password\n",
    )
    assert taken.returncode == 4
    assert "already exists" in taken.stderr
    assert run(env, "nosuchcommand").returncode == 2


def test_audit_verify_detects_tampering(env: dict[str, str], db_url: str) -> None:
    assert run(env, "host", "import", str(DATA / "hadoop.ini")).returncode == 0
    ok = run(env, "audit", "verify")
    assert ok.returncode == 0
    assert "intact" in ok.stdout
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(AuditRecord).where(AuditRecord.id == 3).values(actor="mallory"))
    engine.dispose()
    broken = run(env, "audit", "verify")
    assert broken.returncode == 1
    assert "record 3" in broken.stderr


def test_remote_server_with_tokens(env: dict[str, str]) -> None:
    assert run(env, "host", "import", str(DATA / "hadoop.ini")).returncode == 0
    assert (
        run(
            env,
            "user",
            "create",
            "vera",
            "--role",
            "viewer",
            "--password-stdin",
            stdin="long-enough-password\n",
        ).returncode
        == 0
    )
    token = run(env, "token", "create", "--name", "laptop", "--user", "vera").stdout.strip()
    assert token.startswith("fo_")
    with running_server(env) as url:
        remote = env | {"FLEETOPS_SERVER": url, "FLEETOPS_TOKEN": token}
        assert hostnames(remote, "-s", "nn-*") == ["nn-01"]
        assert json.loads(run(remote, "whoami", "-o", "json").stdout)["username"] == "vera"
        refused = run(remote, "rack", "create", "r9", "--datacenter", "dc1")
        assert refused.returncode == 4
        assert "operator role" in refused.stderr
        anonymous = run(env | {"FLEETOPS_SERVER": url}, "host", "list")
        assert anonymous.returncode == 4
    audit = json.loads(run(env, "audit", "list", "--actor", "vera", "-o", "json").stdout)
    assert [r["outcome"] for r in audit["items"]] == ["forbidden"]


def test_serve_refuses_default_secret_on_public_address(env: dict[str, str]) -> None:
    result = run(env, "serve", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert "FLEETOPS_SECRET_KEY" in result.stderr
