"""What the simulated hosts print when inspection probes them: fio and sysbench, as the real tools.

Each hardware model has nominal figures; a host deviates from them by a few percent of its own
(silicon lottery, drawn once per host) and each run by a little more, so a model's healthy hosts
make a real baseline band. A host with broken hardware (the executor's `hardware_faults`) has a
disk that retries its I/O: every disk point collapses to a fraction of the model's, as a dying
drive measures. Output is what the probe's wrapped command would print on Linux: the /proc
readings around the tool (an idle machine) and the tool's own report.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from fleetops.inspection.probes import MARK_AFTER, MARK_IDLE_END, MARK_IDLE_START, MARK_TOOL


@dataclass(frozen=True)
class Nominal:
    """A model's healthy figures: disk per (rw, iodepth) and CPU/memory throughput."""

    cores: int
    disk_iops: dict[tuple[str, int], float]  # (randread|randwrite, iodepth) -> IOPS at 4 KiB
    disk_mibs: dict[str, float]  # read|write -> MiB/s at 1 MiB
    cpu_events: float  # sysbench events/s on one thread
    memory_mibs: dict[str, float]  # read|write -> MiB/s


NOMINAL = {
    "dn-gen3": Nominal(
        40,
        {("randread", 1): 9_200, ("randread", 32): 78_000, ("randwrite", 32): 61_000},
        {"read": 520, "write": 470},
        1_150,
        {"read": 9_800, "write": 7_200},
    ),
    "cn-gen4": Nominal(
        64,
        {("randread", 1): 12_500, ("randread", 32): 460_000, ("randwrite", 32): 240_000},
        {"read": 3_300, "write": 2_100},
        1_520,
        {"read": 12_400, "write": 9_100},
    ),
    "gp-gen2": Nominal(
        24,
        {("randread", 1): 8_100, ("randread", 32): 71_000, ("randwrite", 32): 54_000},
        {"read": 505, "write": 455},
        930,
        {"read": 7_300, "write": 5_200},
    ),
}
DEFAULT = NOMINAL["gp-gen2"]
FAULTY_DISK = 0.12  # a disk retrying its I/O measures about a tenth of its model
HOST_SPREAD, RUN_SPREAD = 0.03, 0.02
Scale = Callable[[float], float]
_FIO_JOB = re.compile(r"--name=(\S+) --rw=(\w+) --bs=(\w+) --iodepth=(\d+)")
_SECONDS = re.compile(r"--(?:time|runtime)=(\d+(?:\.\d+)?)(ms)?")


def is_probe(command: str) -> bool:
    """Whether the command is a wrapped inspection probe."""
    return MARK_TOOL in command


def answer(
    command: str, *, hostname: str, model: str, faulty: bool, seed: int, run: int
) -> tuple[int, str, str, float]:
    """The probe's exit code, stdout, stderr and how long it takes on this simulated host."""
    nominal = NOMINAL.get(model, DEFAULT)
    host = random.Random(f"{seed}:{hostname}:silicon")
    drift = {part: 1 + host.uniform(-HOST_SPREAD, HOST_SPREAD) for part in ("disk", "cpu", "mem")}
    rng = random.Random(f"{seed}:{hostname}:probe:{run}")

    def jitter(value: float, part: str) -> float:
        return value * drift[part] * (1 + rng.uniform(-RUN_SPREAD, RUN_SPREAD))

    if "fio " in command:
        disk = FAULTY_DISK if faulty else 1.0
        tool = _fio(command, nominal, lambda v: jitter(v, "disk") * disk)
    elif "sysbench cpu" in command:
        tool = _sysbench_cpu(nominal, lambda v: jitter(v, "cpu"))
    elif "sysbench memory" in command:
        tool = _sysbench_memory(nominal, lambda v: jitter(v, "mem"))
    else:
        return 127, "", "sh: 1: probe tool not found on the simulated host\n", 0.0
    seconds = _tool_seconds(command)
    stat = _Stat(nominal.cores, rng)
    out = [MARK_IDLE_START, stat.snapshot(idle=True), MARK_IDLE_END, stat.snapshot(idle=True)]
    out += [MARK_TOOL, tool, MARK_AFTER, stat.snapshot(idle=False)]
    # a demo must not wait for a real benchmark: a tenth of its time, at most two seconds
    return 0, "\n".join(out) + "\n", "", min(seconds / 10, 2.0)


def _tool_seconds(command: str) -> float:
    """How long the real tool would run: fio's runtime per job, or each sysbench run's time."""
    times = [float(n) / (1000 if ms else 1) for n, ms in _SECONDS.findall(command)]
    if "fio " in command:
        return (times[0] if times else 5.0) * max(1, command.count("--name="))
    return sum(times) or 10.0


class _Stat:
    """Consistent /proc/loadavg and /proc/stat readings of an otherwise idle machine."""

    def __init__(self, cores: int, rng: random.Random) -> None:
        self.cores = cores
        self.rng = rng
        self.ticks = [rng.randint(10**6, 10**7) for _ in range(8)]

    def snapshot(self, *, idle: bool) -> str:
        span = 100 * self.cores
        busy = int(span * (0.02 if idle else 0.6))
        self.ticks[0] += busy
        self.ticks[3] += span - busy
        load = self.rng.uniform(0.0, 0.05) * self.cores if idle else 1.0
        lines = [f"{load:.2f} {load:.2f} {load:.2f} 1/300 4242"]
        lines.append("cpu  " + " ".join(str(t) for t in self.ticks) + " 0 0")
        per_cpu = [t // self.cores for t in self.ticks]
        lines += [f"cpu{i} " + " ".join(map(str, per_cpu)) + " 0 0" for i in range(self.cores)]
        return "\n".join(lines)


def _fio(command: str, nominal: Nominal, scale: Scale) -> str:
    jobs = []
    for name, rw, bs, depth in _FIO_JOB.findall(command):
        side = "read" if rw in ("read", "randread") else "write"
        if bs.lower() in ("4k", "4096"):
            base = _iops(nominal, rw, int(depth))
            iops = scale(base)
            bw = iops * 4
        else:
            bw = scale(nominal.disk_mibs[side]) * 1024
            iops = bw / 1024
        stats = {"iops": round(iops, 3), "bw": round(bw), "io_bytes": round(bw * 1024)}
        idle = {"iops": 0.0, "bw": 0, "io_bytes": 0}
        job = {"jobname": name, "error": 0, "read": idle, "write": idle, side: stats}
        jobs.append(job)
    return json.dumps({"fio version": "fio-3.33", "jobs": jobs}, indent=1)


def _iops(nominal: Nominal, rw: str, depth: int) -> float:
    """IOPS at a queue depth: the nearest measured depth, scaled by queueing for others."""
    side = "randread" if rw in ("read", "randread") else "randwrite"
    known = {d: v for (r, d), v in nominal.disk_iops.items() if r == side}
    if depth in known:
        return known[depth]
    nearest = min(known, key=lambda d: abs(d - depth))
    return known[nearest] * float(min(depth / nearest, 1.0) ** 0.5)


def _sysbench_cpu(nominal: Nominal, scale: Scale) -> str:
    runs = []
    for threads in (1, nominal.cores):
        events = scale(nominal.cpu_events * threads * (0.92 if threads > 1 else 1.0))
        runs.append(
            f"sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)\n\n"
            f"Running the test with following options:\nNumber of threads: {threads}\n\n"
            f"CPU speed:\n    events per second: {events:8.2f}\n"
        )
    return "\n".join(runs)


def _sysbench_memory(nominal: Nominal, scale: Scale) -> str:
    runs = []
    for oper in ("read", "write"):
        rate = scale(nominal.memory_mibs[oper])
        runs.append(
            f"sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)\n\n"
            f"Running the test with following options:\nNumber of threads: 1\n\n"
            f"Running memory speed test with the following options:\n  block size: 1024KiB\n"
            f"  total size: 1073741824MiB\n  operation: {oper}\n  scope: global\n\n"
            f"{rate * 10:.2f} MiB transferred ({rate:.2f} MiB/sec)\n"
        )
    return "\n".join(runs)
