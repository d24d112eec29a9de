"""`fleetops exec` over an Ansible inventory as users write them: the key file given per host,
hosts behind a jump host, and a non-root login that becomes root through sudo."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import cli_env
from tests.fixtures.sshd import SshServer

BECOME_USER = "fleetops-become"  # a login without root rights, allowed sudo without a password
# One file a test worker: another worker's teardown must not take this one's rights away.
SUDOERS = Path(f"/etc/sudoers.d/fleetops-become-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
EXEC = [sys.executable, "-m", "fleetops", "exec"]


def run_exec(
    env: dict[str, str], inventory: Path, *command: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXEC, "-i", str(inventory), "-o", "json", "--", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def env_without_key(db_url: str, tmp_path: Path, sshd: SshServer) -> dict[str, str]:
    """The key only where the inventory names it: none in fleetops' settings, none in ~/.ssh."""
    return cli_env(
        db_url,
        tmp_path / "data",
        HOME=str(tmp_path),
        FLEETOPS_SSH_KNOWN_HOSTS=str(sshd.known_hosts),
        FLEETOPS_SSH_HOST_KEY_POLICY="strict",
    )


def hosts_of(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    assert result.stdout, result.stderr
    return {h["hostname"]: h for h in json.loads(result.stdout)["hosts"]}


def accepted_logins(sshd: SshServer) -> int:
    return sshd.log_path.read_text(errors="replace").count("Accepted publickey")


def test_the_key_file_named_in_the_inventory_is_the_one_used(
    db_url: str, tmp_path: Path, sshd: SshServer
) -> None:
    env = env_without_key(db_url, tmp_path, sshd)
    base = f"ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user=root"
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[workers]\n"
        f"h001 {base} ansible_ssh_private_key_file={sshd.key_path}\n"
        f"h002 {base}\n"  # no key anywhere: refused
        "[workers:vars]\nansible_python_interpreter=/usr/bin/python3\n"
    )
    result = run_exec(env, inventory, "echo", "in")
    hosts = hosts_of(result)
    assert (hosts["h001"]["result"], hosts["h001"]["stdout"]) == ("ok", "in\n"), hosts
    assert hosts["h002"]["result"] == "unreachable"
    assert "authentication failed for user root" in hosts["h002"]["error"]
    assert result.returncode == 1


def test_hosts_behind_a_jump_host(db_url: str, tmp_path: Path, sshd: SshServer) -> None:
    env = env_without_key(db_url, tmp_path, sshd)
    jump = f"root@127.0.0.1:{sshd.port}"
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        "all:\n"
        "  vars:\n"
        f"    ansible_ssh_private_key_file: {sshd.key_path}\n"
        "  children:\n"
        "    behind:\n"
        "      vars:\n"
        f"        ansible_ssh_common_args: '-o ProxyJump={jump} -o ServerAliveInterval=5'\n"
        "      hosts:\n"
        + "".join(
            f"        h00{i}: {{ansible_host: 127.0.0.1, ansible_port: {sshd.port}}}\n"
            for i in (1, 2, 3)
        )
    )
    before = accepted_logins(sshd)
    result = run_exec(env, inventory, "echo", "behind")
    assert result.returncode == 0, result.stderr
    assert {h["stdout"] for h in hosts_of(result).values()} == {"behind\n"}
    assert accepted_logins(sshd) - before == 4  # the jump host once, then each host through it
    # what is not applied is said once, not once a host
    assert result.stderr.count("-o ServerAliveInterval=5' is not applied") == 1
    assert "(3 hosts)" in result.stderr


@pytest.fixture(scope="module")
def become_user(sshd: SshServer) -> Iterator[str]:
    """A non-root user that may log in with the test key and run anything through sudo."""
    if os.geteuid() != 0 or shutil.which("sudo") is None or shutil.which("useradd") is None:
        if os.environ.get("CI"):
            pytest.fail("the become tests need root, sudo and useradd in CI")
        pytest.skip("needs root, sudo and useradd")
    try:
        pwd.getpwnam(BECOME_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", BECOME_USER], check=True)
    subprocess.run(["usermod", "-p", "*", BECOME_USER], check=True)  # not locked: keys only
    account = pwd.getpwnam(BECOME_USER)
    ssh_dir = Path(account.pw_dir) / ".ssh"  # the test key's own file is in root's temp dir
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    key = sshd.key_path.with_name(sshd.key_path.name + ".pub").read_bytes().strip() + b"\n"
    if key not in (authorized.read_bytes() if authorized.exists() else b""):
        with authorized.open("ab") as keys:  # each test worker has its own sshd and key
            keys.write(key)
    for path in (ssh_dir, authorized):
        os.chown(path, account.pw_uid, account.pw_gid)
    SUDOERS.write_text(f"{BECOME_USER} ALL=(ALL) NOPASSWD: ALL\n")
    SUDOERS.chmod(0o440)
    yield BECOME_USER
    SUDOERS.unlink(missing_ok=True)


def test_a_non_root_login_becomes_root_through_sudo(
    db_url: str, tmp_path: Path, sshd: SshServer, become_user: str
) -> None:
    env = env_without_key(db_url, tmp_path, sshd)
    base = (
        f"ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user={become_user}"
        f" ansible_ssh_private_key_file={sshd.key_path}"
    )
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[plain]\n"
        f"h001 {base}\n"
        "[elevated]\n"
        f"h002 {base} ansible_become=true\n"
        f"h003 {base} ansible_become=yes ansible_become_user=nobody\n"
        f"h004 {base} ansible_become=true ansible_become_password=hunter2\n"
    )
    result = run_exec(env, inventory, "id", "-un")
    assert result.returncode == 0, result.stdout + result.stderr
    said = {name: h["stdout"] for name, h in hosts_of(result).items()}
    assert said == {
        "h001": f"{become_user}\n",
        "h002": "root\n",
        "h003": "nobody\n",
        "h004": "root\n",
    }
    assert "ansible_become_password is not used" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_the_engine_becomes_as_an_imported_inventory_says_but_connects_its_own_way() -> None:
    from fleetops.changes.targets import target_of
    from fleetops.models import Host, HostLabel

    labels = {
        "ansible_become": "true",
        "ansible_become_user": "hdfs",
        "ansible_ssh_private_key_file": "/home/someone/.ssh/id_ed25519",
        "ansible_ssh_common_args": "-o ProxyJump=elsewhere.example.com",
    }
    host = Host(hostname="dn-1", address="10.0.0.1", ssh_port=22, ssh_user="ops")
    host.labels = [HostLabel(key=k, value=v) for k, v in labels.items()]
    target = target_of(host)
    assert (target.user, target.become_user) == ("ops", "hdfs")
    assert (target.key_path, target.jump) == ("", "")  # the server's key, straight to the host


def test_the_local_executor_never_becomes_anyone() -> None:
    """`become` on a host whose steps run on the server would be sudo on the server."""
    import asyncio
    import getpass

    from fleetops.adapters.local.executor import LocalExecutor
    from fleetops.changes.executor import Target

    target = Target("localhost", become_user="nobody")
    result = asyncio.run(LocalExecutor().run(target, "id -un", timeout=30))
    assert (result.exit_code, result.stdout) == (0, f"{getpass.getuser()}\n")
