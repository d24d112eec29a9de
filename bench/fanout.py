"""Fan-out: one trivial command (`true`) on N hosts, fleetops' SSH executor against Ansible.

Every tool talks to the same real OpenSSH server on loopback through N aliases (h001...), and
every tool opens one connection per alias, as it would per host in a real fleet:

- fleetops: a fresh `SshExecutor` per run, all hosts at once, bounded by `max_connections`
  (200); timed from the first call to the last result, connection setup included.
- ansible: ansible-core's default ad-hoc run, `ansible all -i inv -a true -f 50` (the `command`
  module), and `-m raw` (no Python on the host), in its own virtualenv (bench/.venv-ansible,
  created on first use). Each alias gets its own ControlPath so its ssh multiplexing does not
  share one master across aliases of one address.
- asyncssh floor: connect, run, close per host, all at once under the same semaphore.

Baselines are measured in the same run. fleetops and the floor take the median of --repeat runs;
ansible runs once per size. Needs root (it starts sshd). Run:
`.venv/bin/python bench/fanout.py [--sizes 100,1000] [--skip-ansible] [--repeat 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():  # asyncssh names DSA types; harmless here, as in the executor
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the sshd helpers live with the test fixtures

from fleetops.adapters.ssh import SshConfig, SshExecutor  # noqa: E402
from fleetops.changes.executor import Target  # noqa: E402
from tests.fixtures.sshd import SshServer, running_sshd  # noqa: E402

ANSIBLE_VENV = ROOT / "bench" / ".venv-ansible"
ANSIBLE_CORE = "ansible-core==2.19.14"
MAX_CONNECTIONS = 200
FORKS = 50
ANSIBLE_TIMEOUT_S = 900
HOST_OK = re.compile(r"^h\d{3,4} \| (CHANGED|SUCCESS)\b", re.MULTILINE)


async def fleetops_fanout(server: SshServer, hosts: list[Target]) -> float:
    executor = SshExecutor(
        SshConfig(
            key_path=server.key_path,
            known_hosts=server.known_hosts,
            host_key_policy="strict",
            max_connections=MAX_CONNECTIONS,
        )
    )
    start = time.perf_counter()
    results = await asyncio.gather(*(executor.run(h, "true", timeout=120) for h in hosts))
    elapsed = time.perf_counter() - start
    await executor.close()
    failed = [r for r in results if not r.ok]
    if failed or executor.connections_opened != len(hosts):
        raise SystemExit(
            f"fleetops: {len(failed)} failed ({failed[:1]}), "
            f"{executor.connections_opened} connections for {len(hosts)} hosts"
        )
    return elapsed


async def asyncssh_floor(server: SshServer, hosts: list[Target]) -> float:
    key = asyncssh.read_private_key(server.key_path)
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def one(host: Target) -> int | None:
        async with slots:
            async with asyncssh.connect(
                host.connect_to,
                host.port,
                username=host.user,
                client_keys=[key],
                known_hosts=None,
                config=[],
            ) as conn:
                return (await conn.run("true")).exit_status

    start = time.perf_counter()
    codes = await asyncio.gather(*(one(h) for h in hosts))
    elapsed = time.perf_counter() - start
    if any(code != 0 for code in codes):
        raise SystemExit(f"asyncssh: {sum(c != 0 for c in codes)} hosts failed")
    return elapsed


def ensure_ansible() -> Path:
    """ansible-core in its own virtualenv, so it never touches fleetops' dependencies."""
    ansible = ANSIBLE_VENV / "bin" / "ansible"
    if not ansible.exists():
        print(f"installing {ANSIBLE_CORE} into {ANSIBLE_VENV} ...", file=sys.stderr)
        subprocess.run(["python3", "-m", "venv", str(ANSIBLE_VENV)], check=True)
        pip = str(ANSIBLE_VENV / "bin" / "pip")
        subprocess.run([pip, "install", "--quiet", ANSIBLE_CORE], check=True)
    return ansible


def write_inventory(server: SshServer, hosts: list[Target], workdir: Path) -> Path:
    control = workdir / "cp"
    control.mkdir()
    lines = ["[fleet]"]
    lines += [
        f"{h.hostname} ansible_host={h.connect_to} ansible_control_path={control / h.hostname}"
        for h in hosts
    ]
    common_args = "-o UserKnownHostsFile=/dev/null"
    lines += [
        "[fleet:vars]",
        f"ansible_port={server.port}",
        f"ansible_user={server.user}",
        f"ansible_ssh_private_key_file={server.key_path}",
        f"ansible_ssh_common_args='{common_args}'",
    ]
    inventory = workdir / "inventory.ini"
    inventory.write_text("\n".join(lines) + "\n")
    return inventory


def ansible_run(ansible: Path, server: SshServer, hosts: list[Target], module: str) -> float:
    with tempfile.TemporaryDirectory(prefix="fanout-ansible-") as tmp:
        workdir = Path(tmp)
        inventory = write_inventory(server, hosts, workdir)
        env = {
            **os.environ,
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_HOME": str(workdir / "home"),  # keep ~/.ansible out of it
            "ANSIBLE_NOCOLOR": "1",
        }
        argv = [str(ansible), "all", "-i", str(inventory), "-f", str(FORKS)]
        argv += ["-m", module] if module != "command" else []
        argv += ["-a", "true"]
        start = time.perf_counter()
        done = subprocess.run(
            argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=ANSIBLE_TIMEOUT_S
        )
        elapsed = time.perf_counter() - start
        close_masters(workdir / "cp")
    ok = len(HOST_OK.findall(done.stdout))
    if done.returncode != 0 or ok != len(hosts):
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise SystemExit(f"ansible {module}: {ok}/{len(hosts)} ok, rc {done.returncode}: {tail}")
    return elapsed


def close_masters(control: Path) -> None:
    """Stop the ssh ControlPersist masters this run left (each by its socket)."""
    for socket in control.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "fleet"],
            capture_output=True,
            check=False,
        )


def fleetops_exec(server: SshServer, hosts: list[Target], data: Path) -> float:
    """The whole `fleetops exec` command as a user runs it: process start, recording the ad-hoc
    change in the local database (`data`, kept across runs as a user's is), the fan-out, and
    storing every result."""
    with tempfile.TemporaryDirectory(prefix="fanout-exec-") as tmp:
        workdir = Path(tmp)
        inventory = workdir / "hosts.ini"
        inventory.write_text(
            "[fleet]\n"
            + "".join(
                f"{h.hostname} ansible_host={h.connect_to} ansible_port={server.port} "
                f"ansible_user={server.user}\n"
                for h in hosts
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
        env |= {
            "FLEETOPS_DATA_DIR": str(data),
            "XDG_RUNTIME_DIR": str(data),  # this run's own local API server
            "FLEETOPS_SSH_KEY_PATH": str(server.key_path),
            "FLEETOPS_SSH_KNOWN_HOSTS": str(server.known_hosts),
            "FLEETOPS_SSH_HOST_KEY_POLICY": "strict",
        }
        argv = [
            sys.executable,
            "-m",
            "fleetops",
            "exec",
            "-i",
            str(inventory),
            "-o",
            "json",
            "--forks",
            str(min(len(hosts), MAX_CONNECTIONS)),
            "--",
            "true",
        ]
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        failed = [
            h for h in json.loads(done.stdout or '{"hosts": []}')["hosts"] if h["result"] != "ok"
        ]
        why = failed[0]["error"] or failed[0]["stderr"] if failed else done.stderr.strip()[-500:]
        raise SystemExit(f"fleetops exec failed on {len(failed)} hosts: {why}")
    return elapsed


def stop_local_servers(data: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(data)}
    subprocess.run(
        [sys.executable, "-m", "fleetops", "local", "stop"], env=env, capture_output=True
    )


def interpreter_start() -> float:
    """A process that starts Python and imports asyncssh, then exits: what the floor, run as a
    command of its own, would add to its loop."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import asyncssh"], check=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def median_of(repeat: int, run: Callable[[], Awaitable[float]]) -> float:
    return statistics.median(asyncio.run(run()) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="host counts, comma-separated")
    parser.add_argument("--skip-ansible", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs of fleetops and the floor")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    ansible = None if args.skip_ansible else ensure_ansible()

    rows: list[tuple[int, str, float]] = []
    with running_sshd() as server:
        print(f"sshd on 127.0.0.1:{server.port}; {os.cpu_count()} CPUs", file=sys.stderr)
        for n in sizes:
            hosts = server.hosts(n)
            ours = median_of(args.repeat, lambda hosts=hosts: fleetops_fanout(server, hosts))
            rows.append((n, "fleetops SshExecutor", ours))
            with tempfile.TemporaryDirectory(prefix="fx-") as data:  # short: a socket's path
                # The first use creates the database and starts the local API server, as a
                # user's first command of the day does; the timed runs are the ones after.
                first = fleetops_exec(server, hosts[:1], Path(data))
                try:
                    whole = statistics.median(
                        fleetops_exec(server, hosts, Path(data)) for _ in range(args.repeat)
                    )
                finally:
                    stop_local_servers(Path(data))
            rows.append((n, "fleetops exec (whole command)", whole))
            rows.append((n, "fleetops exec, 1 host, first of the day", first))
            floor = median_of(args.repeat, lambda hosts=hosts: asyncssh_floor(server, hosts))
            rows.append((n, "asyncssh connect+run+close (floor)", floor))
            rows.append((n, "floor + interpreter start", floor + interpreter_start()))
            if ansible is not None:
                for module, label in (
                    ("command", "ansible -a true (command)"),
                    ("raw", "ansible -m raw"),
                ):
                    rows.append(
                        (n, f"{label} -f {FORKS}", ansible_run(ansible, server, hosts, module))
                    )
            print(f"  N={n} done", file=sys.stderr)

    ours_by_n = {n: s for n, tool, s in rows if tool == "fleetops SshExecutor"}
    print(f"\n{'N':>5}  {'tool':<38} {'seconds':>8}  {'vs fleetops':>11}")
    for n, tool, seconds in rows:
        print(f"{n:>5}  {tool:<38} {seconds:>8.2f}  {seconds / ours_by_n[n]:>10.2f}x")
    print(
        f"\n{ANSIBLE_CORE}, asyncssh {asyncssh.__version__}; fleetops and floor: median of "
        f"{args.repeat}; max_connections {MAX_CONNECTIONS}, ansible forks {FORKS}"
    )
    print("\nthe whole `fleetops exec` command against the goals:")
    for n in sizes:
        by_tool = {tool: s for size, tool, s in rows if size == n}
        whole = by_tool["fleetops exec (whole command)"]
        goals = [
            (
                "floor + interpreter start",
                "within 1.3x",
                whole / by_tool["floor + interpreter start"],
            ),
        ]
        for tool, goal in (
            (f"ansible -a true (command) -f {FORKS}", 10),
            (f"ansible -m raw -f {FORKS}", 5),
        ):
            if tool in by_tool:
                goals.append((tool, f">= {goal}x faster", by_tool[tool] / whole))
        for tool, goal, ratio in goals:
            print(f"  N={n:<5} vs {tool:<36} {ratio:>6.2f}x  (goal: {goal})")


if __name__ == "__main__":
    main()
