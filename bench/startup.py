"""The CLI's start-up: `fleetops --help`, help and two commands, against `ansible --version`.

Each is timed as a whole process from start to exit (the installed `fleetops` script, as a user
types it), the commands taking turns run by run so load on the machine falls on all of them
alike; the median of `--runs` is reported, after one untimed run of each (a warm page cache).
fleetops' own bytecode is compiled first, as `make compile` does, so no run pays for compiling.

`host list` runs on a local database (a fresh data directory, created by the untimed run), and
`logs parse` on an empty file: both pay their whole start-up and nearly nothing else. `host list`
is timed three ways: as a user runs it day to day (the local API server already up), as the
first command that starts that server, and with the server turned off
(`FLEETOPS_CLI_PERSIST_SECONDS=0`: the API built in the command's own process).

For each fleetops command, one more run under `python -X importtime` gives what its start-up is
made of: the time spent importing and the modules imported.

Needs ansible-core, from the locked `dev` extra.
Run: `.venv/bin/python bench/startup.py [--runs 7]`.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import fleetops

BIN = Path(sys.executable).parent
BASELINE = ("ansible --version", [str(BIN / "ansible"), "--version"])
FLEETOPS = [str(BIN / "fleetops")]
WORK = Path(tempfile.mkdtemp(prefix="fleetops-startup-"))  # a data directory and an empty log
EMPTY = WORK / "empty.log"
HOST_LIST = [*FLEETOPS, "host", "list"]
IN_PROCESS = "FLEETOPS_CLI_PERSIST_SECONDS=0 "
FIRST = "fleetops host list (first)"
COMMANDS = [
    ("fleetops --help", [*FLEETOPS, "--help"]),
    ("fleetops logs parse --help", [*FLEETOPS, "logs", "parse", "--help"]),
    ("fleetops host --help", [*FLEETOPS, "host", "--help"]),
    ("fleetops logs parse (empty)", [*FLEETOPS, "logs", "parse", "--content-only", str(EMPTY)]),
    ("fleetops host list", HOST_LIST),
    (FIRST, HOST_LIST),
    (f"{IN_PROCESS}host list", HOST_LIST),
]


def run_once(name: str, command: Sequence[str]) -> float:
    env = dict(os.environ)
    if name.startswith(IN_PROCESS):
        env["FLEETOPS_CLI_PERSIST_SECONDS"] = "0"
    if name == FIRST:  # stop the local API server, so that this run starts it
        subprocess.run([*FLEETOPS, "local", "stop"], capture_output=True, check=True)
    start = time.perf_counter()
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env
    )
    return time.perf_counter() - start


def imports(name: str, command: Sequence[str]) -> tuple[float, int]:
    """Seconds spent importing (the top-level imports' cumulative times) and modules imported,
    by the command's own process."""
    env = dict(os.environ)
    if name.startswith(IN_PROCESS):
        env["FLEETOPS_CLI_PERSIST_SECONDS"] = "0"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    total_us, modules = 0, 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        modules += 1
        if not name.startswith("  "):  # one space of indent: imported by the script itself
            total_us += int(cumulative)
    return total_us / 1e6, modules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command")
    args = parser.parse_args()
    if not Path(BASELINE[1][0]).is_file():
        print(
            "ansible is missing: install the locked dev extra "
            "(.venv/bin/uv sync --locked --extra dev)",
            file=sys.stderr,
        )
        return 2
    compileall.compile_dir(Path(fleetops.__file__).parent, quiet=1)
    EMPTY.touch()
    os.environ["FLEETOPS_DATA_DIR"] = str(WORK)
    os.environ["XDG_RUNTIME_DIR"] = str(WORK)  # this run's own local API servers
    every = [*COMMANDS, BASELINE]
    times: dict[str, list[float]] = {name: [] for name, _ in every}
    try:
        for name, command in every:
            run_once(name, command)
        for _ in range(args.runs):
            for name, command in every:
                times[name].append(run_once(name, command))
        report(every, times, args.runs)
    finally:  # the local API servers this run started (`imports` starts one too)
        subprocess.run([*FLEETOPS, "local", "stop"], capture_output=True, check=False)
    return 0


def report(
    every: Sequence[tuple[str, list[str]]], times: dict[str, list[float]], runs: int
) -> None:
    baseline = statistics.median(times[BASELINE[0]])
    print(
        f"\n{'command':<44} {'median s':>9} {'min s':>7} {'vs ansible':>11} "
        f"{'imports s':>10} {'modules':>8}"
    )
    for name, command in every:
        median = statistics.median(times[name])
        imported = ""
        if name not in (BASELINE[0], FIRST):
            seconds, modules = imports(name, command)
            imported = f"{seconds:>10.2f} {modules:>8,}"
        row = f"{name:<44} {median:>9.3f} {min(times[name]):>7.3f} {median / baseline:>10.2f}x"
        print(f"{row} {imported}".rstrip())
    print(f"median of {runs} runs each; Python {sys.version.split()[0]}")


if __name__ == "__main__":
    raise SystemExit(main())
