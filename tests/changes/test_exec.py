"""`fleetops exec`: one command on many real SSH hosts, recorded as an ad-hoc change."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.fixtures.server import cli_env
from tests.fixtures.sshd import SshServer, free_port


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetops", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_exec_over_ssh_from_an_ansible_inventory(
    db_url: str, tmp_path: Path, sshd: SshServer
) -> None:
    env = cli_env(
        db_url,
        tmp_path / "data",
        FLEETOPS_SSH_KEY_PATH=str(sshd.key_path),
        FLEETOPS_SSH_KNOWN_HOSTS=str(sshd.known_hosts),
        FLEETOPS_SSH_HOST_KEY_POLICY="strict",
    )
    lines = ["[workers]"]
    lines += [
        f"{t.hostname} ansible_host={t.address} ansible_port={t.port} ansible_user={t.user}"
        for t in sshd.hosts(20)
    ]
    lines += ["[dead]", f"gone ansible_host=127.0.0.1 ansible_port={free_port()}"]
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("\n".join(lines) + "\n")

    result = run(
        env,
        "exec",
        "-i",
        str(inventory),
        "-o",
        "json",
        "--timeout",
        "20",
        "--",
        "echo",
        "from $(whoami)",
    )
    assert result.returncode == 1, result.stderr  # one host is unreachable
    report = json.loads(result.stdout)
    by_host = {h["hostname"]: h for h in report["hosts"]}
    assert len(by_host) == 21
    assert by_host["gone"]["result"] == "unreachable"
    assert by_host["gone"]["error"].startswith("unreachable")
    workers = [h for name, h in by_host.items() if name != "gone"]
    # argv words are quoted as given: the $(...) reaches the host as text, not a substitution
    assert {(h["result"], h["stdout"]) for h in workers} == {("ok", "from $(whoami)\n")}

    shown = json.loads(run(env, "change", "show", str(report["change_id"]), "-o", "json").stdout)
    assert (shown["kind"], shown["state"], shown["risk"]) == ("adhoc", "failed", "read_only")
    assert shown["host_count"] == 21
    assert re.search(r"\(as reported by local:\S+'s client\)$", shown["status"])  # not seen here
    audit = json.loads(run(env, "audit", "list", "--action", "change.exec", "-o", "json").stdout)
    assert [r["entity_id"] for r in audit["items"]] == [str(report["change_id"])]


def test_exec_on_inventory_hosts_by_selector(db_url: str, tmp_path: Path, sshd: SshServer) -> None:
    env = cli_env(
        db_url,
        tmp_path / "data",
        FLEETOPS_SSH_KEY_PATH=str(sshd.key_path),
        FLEETOPS_SSH_KNOWN_HOSTS=str(sshd.known_hosts),
        FLEETOPS_SSH_HOST_KEY_POLICY="strict",
    )
    rows = ["hostname,address,ssh_port,ssh_user"]
    rows += [f"{t.hostname},{t.address},{t.port},{t.user}" for t in sshd.hosts(6)]
    csv = tmp_path / "hosts.csv"
    csv.write_text("\n".join(rows) + "\n")
    assert run(env, "host", "import", str(csv)).returncode == 0
    result = run(env, "exec", "-t", "h00[1-4]", "--", "hostname >/dev/null && echo ok")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" ok ") >= 4
    assert "4 ok" in result.stderr
    empty = run(env, "exec", "-t", "rack=nowhere", "--", "true")
    assert empty.returncode == 4
    assert "EmptyTargetSet" in empty.stderr
    both = run(env, "exec", "-t", "all", "-i", str(csv), "--", "true")
    assert both.returncode == 2
