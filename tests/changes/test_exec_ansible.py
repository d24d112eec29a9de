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
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fixtures.server import cli_env
from tests.fixtures.sshd import SshServer

BECOME_USER = "fleetops-become"  # a login without root rights, allowed sudo without a password
# One file a test worker: another worker's teardown must not take this one's rights away.
SUDOERS = Path(f"/etc/sudoers.d/fleetops-become-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
PASSWORD_USER = "fleetops-sudopw"  # one whose sudo asks for a password
SUDO_PASSWORD = "Tr0ub4dor&3 x"  # a space and a shell character: sent as they are
EXEC = [sys.executable, "-m", "fleetops", "exec"]


def run_exec(
    env: dict[str, str], inventory: Path, *command: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXEC, "-i", str(inventory), *options, "-o", "json", "--", *command],
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


def login_as(sshd: SshServer, user: str, *more: str) -> str:
    """An inventory line's variables: this sshd, as `user`, with the test key."""
    return " ".join(
        (
            f"ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user={user}",
            f"ansible_ssh_private_key_file={sshd.key_path}",
            *more,
        )
    )


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


def _login_user(name: str, sshd: SshServer, sudoers: str, password: str = "") -> str:
    """A non-root user that may log in with the test key, with this sudoers rule."""
    if os.geteuid() != 0 or shutil.which("sudo") is None or shutil.which("useradd") is None:
        if os.environ.get("CI"):
            pytest.fail("the become tests need root, sudo and useradd in CI")
        pytest.skip("needs root, sudo and useradd")
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True)
    if password:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    else:
        subprocess.run(["usermod", "-p", "*", name], check=True)  # not locked: keys only
    account = pwd.getpwnam(name)
    ssh_dir = Path(account.pw_dir) / ".ssh"  # the test key's own file is in root's temp dir
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    key = sshd.key_path.with_name(sshd.key_path.name + ".pub").read_bytes().strip() + b"\n"
    if key not in (authorized.read_bytes() if authorized.exists() else b""):
        with authorized.open("ab") as keys:  # each test worker has its own sshd and key
            keys.write(key)
    for path in (ssh_dir, authorized):
        os.chown(path, account.pw_uid, account.pw_gid)
    rules = SUDOERS.read_text() if SUDOERS.exists() else ""
    SUDOERS.write_text(rules + sudoers + "\n")
    SUDOERS.chmod(0o440)
    return name


def test_hosts_behind_a_chain_of_jump_hosts(db_url: str, tmp_path: Path, sshd: SshServer) -> None:
    env = env_without_key(db_url, tmp_path, sshd)
    hop = f"root@127.0.0.1:{sshd.port}"
    base = f"ansible_host=127.0.0.1 ansible_port={sshd.port}"
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[behind]\n"
        + "".join(f"h00{i} {base}\n" for i in (1, 2))
        + "[behind:vars]\n"
        + f"ansible_ssh_private_key_file={sshd.key_path}\n"
        + f"ansible_ssh_common_args='-J {hop},{hop}'\n"
    )
    before = accepted_logins(sshd)
    result = run_exec(env, inventory, "echo", "deep")
    assert result.returncode == 0, result.stderr
    assert {h["stdout"] for h in hosts_of(result).values()} == {"deep\n"}
    assert accepted_logins(sshd) - before == 4  # each hop once, then each host through both


@pytest.fixture(scope="module")
def become_user(sshd: SshServer) -> Iterator[str]:
    """A non-root user that may log in with the test key and run anything through sudo."""
    yield _login_user(BECOME_USER, sshd, f"{BECOME_USER} ALL=(ALL) NOPASSWD: ALL")
    SUDOERS.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def password_user(sshd: SshServer) -> Iterator[str]:
    """A non-root user whose sudo asks for the user's password, as most fleets' do."""
    rule = f"{PASSWORD_USER} ALL=(ALL) ALL"
    yield _login_user(PASSWORD_USER, sshd, rule, password=SUDO_PASSWORD)
    SUDOERS.unlink(missing_ok=True)


def test_a_non_root_login_becomes_root_through_sudo(
    db_url: str, tmp_path: Path, sshd: SshServer, become_user: str
) -> None:
    env = env_without_key(db_url, tmp_path, sshd)
    base = login_as(sshd, become_user)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[plain]\n"
        f"h001 {base}\n"
        "[elevated]\n"
        f"h002 {base} ansible_become=true\n"
        f"h003 {base} ansible_become=yes ansible_become_user=nobody\n"
    )
    result = run_exec(env, inventory, "id", "-un")
    assert result.returncode == 0, result.stdout + result.stderr
    said = {name: h["stdout"] for name, h in hosts_of(result).items()}
    assert said == {"h001": f"{become_user}\n", "h002": "root\n", "h003": "nobody\n"}


def test_a_sudo_password_reaches_sudo_alone_never_the_command_text_nor_the_record(
    db_url: str, tmp_path: Path, sshd: SshServer, password_user: str
) -> None:
    env = env_without_key(db_url, tmp_path, sshd)
    base = login_as(sshd, password_user, "ansible_become=true")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[fleet]\n"
        f"h001 {base} ansible_become_password='{SUDO_PASSWORD}'\n"
        f"h002 {base} ansible_become_password=wrong\n"
        f"h003 {base}\n"
    )
    result = run_exec(env, inventory, "id", "-un")
    hosts = hosts_of(result)
    assert (hosts["h001"]["result"], hosts["h001"]["stdout"]) == ("ok", "root\n"), hosts
    assert hosts["h002"]["result"] == "failed"
    assert "the become password was refused" in hosts["h002"]["stderr"]
    assert "a password is required" in hosts["h003"]["stderr"]  # sudo -n: no prompt to hang on

    password_file = tmp_path / "become.txt"
    password_file.write_text(SUDO_PASSWORD + "\n")
    inventory.write_text(f"[fleet]\nh003 {base}\n")
    options = ("--become-password-file", str(password_file))
    again = run_exec(env, inventory, "id", "-un", options=options)
    assert hosts_of(again)["h003"]["stdout"] == "root\n", again.stderr

    said = result.stdout + result.stderr + again.stdout + again.stderr
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    if db_url.startswith("sqlite"):
        stored += b"".join(p.read_bytes() for p in Path(db_url[10:]).parent.glob("*.db*"))
    for text in (said.encode(), stored, sshd.log_path.read_bytes()):
        assert SUDO_PASSWORD.encode() not in text


def test_sudo_reads_its_password_and_the_command_the_rest_of_the_input(
    sshd: SshServer, password_user: str
) -> None:
    """What the executor sends on a command's input is the command's, byte for byte, whether
    sudo asks for the password, has it cached, or is refused it."""
    import asyncio

    from fleetops.adapters.ssh import SshConfig, SshExecutor
    from fleetops.changes.executor import Target

    data = "first line\nsecond, no newline"
    config = SshConfig(
        key_path=sshd.key_path, known_hosts=sshd.known_hosts, become_password=SUDO_PASSWORD
    )
    host = Target("h001", "127.0.0.1", sshd.port, password_user, become_user="root")

    async def scenario() -> list[tuple[int | None, str, str]]:
        executor = SshExecutor(config)
        wrong = replace(host, become_password="wrong")
        try:
            runs = [
                await executor.run(host, "id -un; cat", timeout=30, stdin=data),
                await executor.run(host, "cat", timeout=30, stdin=data),  # cached: asks none
                await executor.run(wrong, "cat", timeout=30, stdin=data),
            ]
            wrote = await executor.put_file(host, "/root/.fleetops-become", b"x\ny", timeout=30)
            assert wrote.ok, wrote
        finally:
            await executor.close()
        return [(r.exit_code, r.stdout, r.stderr) for r in runs]

    first, cached, refused = asyncio.run(scenario())
    assert first[:2] == (0, "root\n" + data), first
    assert cached[:2] == (0, data), cached
    assert refused[0] == 1
    assert "the become password was refused" in refused[2]
    assert data not in refused[1] + refused[2]
    written = Path("/root/.fleetops-become")
    assert (written.read_bytes(), written.stat().st_uid) == (b"x\ny", 0)
    written.unlink()


def test_an_imported_inventory_keeps_no_password(
    db_url: str, tmp_path: Path, sshd: SshServer
) -> None:
    env = env_without_key(db_url, tmp_path, sshd)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[fleet]\nh001 ansible_become=true ansible_become_password=hunter2 ansible_ssh_pass=pw2\n"
    )
    imported = subprocess.run(
        [sys.executable, "-m", "fleetops", "host", "import", str(inventory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "fleetops", "host", "show", "h001", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    labels = json.loads(shown.stdout)["labels"]
    assert labels == {"ansible_become": "true"}
    if db_url.startswith("sqlite"):
        stored = b"".join(p.read_bytes() for p in Path(db_url[10:]).parent.glob("*.db*"))
        assert b"hunter2" not in stored
        assert b"pw2" not in stored


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
