"""The simulated fleet's workload: CPU seconds to write ten minutes of a 1,000-host fleet's logs.

The demo and the tests drive `Workload` on the clock; if it cannot keep well ahead of real time,
the demo's charts lag and every test that waits for a fault's lines waits longer. The goal is ten
simulated minutes of 1,000 hosts (six faults on) in under 15 CPU seconds: 40 times real time.

The baseline, in the same run, is the floor of any generator written in Python: as many lines,
each an f-string of a timestamp, a host and a fixed message appended to a list.

Run: `.venv/bin/python bench/simulation.py [--hosts 1000] [--minutes 10]`.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from fleetops.sim.faults import schedule_faults
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GOAL_RATIO = 40  # simulated seconds per CPU second


def simulate(hosts: int, minutes: int) -> tuple[int, float]:
    doc = generate(hosts=hosts, racks=max(1, hosts // 25))
    duration = timedelta(minutes=minutes)
    faults = schedule_faults(doc, count=6, seed=1, start=START, duration=duration)
    began = time.process_time()
    workload = Workload(doc, seed=1, start=START, faults=faults)
    lines = 0
    for second in range(10, minutes * 60 + 1, 10):
        lines += len(workload.advance(START + timedelta(seconds=second)))
    return lines, time.process_time() - began


def floor(lines: int, hosts: int) -> float:
    began = time.process_time()
    out: list[str] = []
    for i in range(lines):
        out.append(f"{START + timedelta(milliseconds=i)} dn-{i % hosts:04d} INFO block received")
    return time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=10)
    args = parser.parse_args()
    lines, spent = simulate(args.hosts, args.minutes)
    ratio = args.minutes * 60 / spent
    print(f"workload   {args.hosts:,} hosts, {args.minutes} min: {lines:,} lines")
    print(f"  {spent:6.2f} s CPU, {lines / spent:,.0f} lines/s, {ratio:.0f}x real time")
    base = floor(lines, args.hosts)
    print(f"baseline   f-string per line: {base:6.2f} s CPU, {lines / base:,.0f} lines/s")
    print(f"  workload / floor: {spent / base:.1f}x")
    verdict = "meets" if ratio >= GOAL_RATIO else "misses"
    print(f"{verdict} the goal (>= {GOAL_RATIO}x real time)")


if __name__ == "__main__":
    main()
