"""Hardware probes: the shell command to run on a host and the parser of what it printed.

Each probe's command brackets the benchmark tool with readings of /proc/loadavg and /proc/stat,
so a result carries how busy the machine was while it was measured: a slow figure from a busy
machine says nothing about its hardware.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from fleetops.devices.signals import smart
from fleetops.devices.signals.exceptions import SignalError

MARK_IDLE_START = "@@fleetops-probe idle-start@@"
MARK_IDLE_END = "@@fleetops-probe idle-end@@"
MARK_TOOL = "@@fleetops-probe tool@@"
MARK_AFTER = "@@fleetops-probe after@@"
MARKS = (MARK_IDLE_START, MARK_IDLE_END, MARK_TOOL, MARK_AFTER)


class ProbeError(Exception):
    """A probe's output could not be read; the message says what was missing or malformed."""


@dataclass(frozen=True)
class LoadSample:
    """How busy the machine was around a probe run.

    `busy_before` is the busy share of all CPUs in the idle window just before the tool started
    (the tool's own CPU use would hide other work); `steal_during` is the share of CPU time the
    hypervisor took while the tool ran.
    """

    cpus: int
    load1_before: float
    load1_after: float
    busy_before: float
    busy_during: float
    steal_during: float


@dataclass(frozen=True)
class ProbeResult:
    """One probe run on one machine: a curve of named points and the load it ran under."""

    probe: str
    tool_version: str | None
    points: dict[str, float]
    units: dict[str, str]
    load: LoadSample


class Probe(Protocol):
    """A measurement: the command to run on a host, its time bound, and its output parser."""

    @property
    def name(self) -> str: ...

    @property
    def timeout_s(self) -> float: ...

    def command(self) -> str: ...

    def parse(self, output: str) -> ProbeResult: ...


def wrap(tool_command: str, *, settle_s: float) -> str:
    """Bracket a tool command with load readings; the shell exits with the tool's status."""
    snap = "cat /proc/loadavg /proc/stat"
    return (
        f"echo '{MARK_IDLE_START}'; {snap}; sleep {settle_s:g}; "
        f"echo '{MARK_IDLE_END}'; {snap}; "
        f"echo '{MARK_TOOL}'; {{ {tool_command}; }}; rc=$?; "
        f"echo '{MARK_AFTER}'; {snap}; exit $rc"
    )


def split_sections(output: str) -> dict[str, str]:
    """Cut wrapped output into its four sections, keyed by marker."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.strip() in MARKS:
            current = sections.setdefault(line.strip(), [])
        elif current is not None:
            current.append(line)
    missing = [m for m in MARKS if m not in sections]
    if missing:
        raise ProbeError(
            f"probe output lacks the section(s) {', '.join(missing)}: "
            "the command did not run to completion"
        )
    return {mark: "\n".join(lines) for mark, lines in sections.items()}


@dataclass(frozen=True)
class _Snapshot:
    load1: float
    cpus: int
    total: int
    idle: int
    steal: int


def _snapshot(text: str, where: str) -> _Snapshot:
    lines = text.strip().splitlines()
    try:
        load1 = float(lines[0].split()[0])
        cpu = next(line.split() for line in lines if line.startswith("cpu "))
        ticks = [int(v) for v in cpu[1:9]]
    except (IndexError, ValueError, StopIteration) as exc:
        raise ProbeError(f"unreadable /proc/loadavg or /proc/stat {where} the tool: {exc}") from exc
    if len(ticks) < 8:
        raise ProbeError(f"/proc/stat {where} the tool has {len(ticks)} CPU fields, expected 8")
    cpus = sum(1 for line in lines if re.match(r"cpu\d+ ", line))
    # user nice system idle iowait irq softirq steal; idle time includes iowait
    return _Snapshot(load1, max(cpus, 1), sum(ticks), ticks[3] + ticks[4], ticks[7])


def _share(before: _Snapshot, after: _Snapshot, part: int) -> float:
    total = after.total - before.total
    return part / total if total > 0 else 0.0


def parse_load(sections: dict[str, str]) -> LoadSample:
    """Read the load around the tool from the wrapped output's /proc readings."""
    start = _snapshot(sections[MARK_IDLE_START], "before")
    ready = _snapshot(sections[MARK_IDLE_END], "before")
    after = _snapshot(sections[MARK_AFTER], "after")
    idle_window = ready.total - start.total - (ready.idle - start.idle)
    run_busy = after.total - ready.total - (after.idle - ready.idle)
    return LoadSample(
        cpus=ready.cpus,
        load1_before=ready.load1,
        load1_after=after.load1,
        busy_before=_share(start, ready, idle_window),
        busy_during=_share(ready, after, run_busy),
        steal_during=_share(ready, after, after.steal - ready.steal),
    )


@dataclass(frozen=True)
class DiskPoint:
    """One point of the disk curve: an fio access pattern and the figure read from it."""

    label: str
    rw: Literal["read", "write", "randread", "randwrite"]
    bs: str
    iodepth: int
    unit: Literal["IOPS", "MiB/s"]


DEFAULT_DISK_CURVE: tuple[DiskPoint, ...] = (
    DiskPoint("randread 4KiB qd1", "randread", "4k", 1, "IOPS"),
    DiskPoint("randread 4KiB qd32", "randread", "4k", 32, "IOPS"),
    DiskPoint("read 1MiB qd8", "read", "1m", 8, "MiB/s"),
    DiskPoint("write 1MiB qd8", "write", "1m", 8, "MiB/s"),
    DiskPoint("randwrite 4KiB qd32", "randwrite", "4k", 32, "IOPS"),
)


@dataclass(frozen=True)
class DiskProbe:
    """fio over a file (or block device) with one stonewalled job per curve point."""

    filename: str
    size_mib: int = 256
    runtime_s: float = 5.0
    direct: bool = True
    ioengine: str = "libaio"
    settle_s: float = 1.0
    remove_after: bool = False
    curve: tuple[DiskPoint, ...] = DEFAULT_DISK_CURVE
    name: str = "disk"

    @classmethod
    def in_directory(cls, directory: str, **options: Any) -> DiskProbe:
        """Probe through a scratch file in `directory`, removed after the run."""
        return cls(
            filename=f"{directory.rstrip('/')}/fleetops-inspection.fio",
            remove_after=True,
            **options,
        )

    @property
    def timeout_s(self) -> float:
        # laying out the file at a slow 20 MiB/s, then each point plus fio's own start-up
        return self.settle_s + self.size_mib / 20 + len(self.curve) * (self.runtime_s + 5) + 10

    def command(self) -> str:
        """Return the shell command for the whole curve."""
        args = [
            "fio", "--output-format=json", f"--filename={self.filename}",
            f"--size={self.size_mib}M", f"--direct={int(self.direct)}",
            f"--ioengine={self.ioengine}", "--time_based=1",
            f"--runtime={round(self.runtime_s * 1000)}ms",
        ]  # fmt: skip
        for i, point in enumerate(self.curve):
            args += [f"--name=p{i}", f"--rw={point.rw}", f"--bs={point.bs}"]
            args += [f"--iodepth={point.iodepth}", "--stonewall"]
        tool = shlex.join(args)
        if self.remove_after:
            tool += f"; rc=$?; rm -f {shlex.quote(self.filename)}; (exit $rc)"
        return wrap(tool, settle_s=self.settle_s)

    def parse(self, output: str) -> ProbeResult:
        """Read fio's JSON report into the curve."""
        sections = split_sections(output)
        report = _fio_json(sections[MARK_TOOL])
        jobs = {job.get("jobname"): job for job in report.get("jobs", [])}
        points: dict[str, float] = {}
        for i, point in enumerate(self.curve):
            points[point.label] = _fio_point(jobs.get(f"p{i}"), point)
        return ProbeResult(
            probe=self.name,
            tool_version=report.get("fio version"),
            points=points,
            units={p.label: p.unit for p in self.curve},
            load=parse_load(sections),
        )


def _fio_json(text: str) -> dict[str, Any]:
    start = text.find("{")
    if start < 0:
        raise ProbeError("fio printed no JSON report: " + (text.strip()[:200] or "no output"))
    try:
        report, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise ProbeError(f"fio's JSON report is malformed: {exc}") from exc
    if not isinstance(report, dict):
        raise ProbeError("fio's JSON report is not an object")
    return report


def _fio_point(job: dict[str, Any] | None, point: DiskPoint) -> float:
    if job is None:
        raise ProbeError(f"fio report has no job for '{point.label}'")
    if job.get("error"):
        raise ProbeError(f"fio job for '{point.label}' failed with error {job['error']}")
    side = "read" if point.rw in ("read", "randread") else "write"
    try:
        stats = job[side]
        value = float(stats["iops"]) if point.unit == "IOPS" else float(stats["bw"]) / 1024
    except (KeyError, TypeError, ValueError) as exc:
        raise ProbeError(f"fio job for '{point.label}' lacks {side} figures: {exc}") from exc
    if value <= 0:
        raise ProbeError(f"fio job for '{point.label}' measured nothing (0 {point.unit})")
    return value


_SYSBENCH_VERSION = re.compile(r"^sysbench (\S+)", re.MULTILINE)
_THREADS = re.compile(r"Number of threads:\s*(\d+)")
_EVENTS = re.compile(r"events per second:[ \t]*(\S*)")
_MEM_OPER = re.compile(r"operation:\s*(\w+)")
_MEM_RATE = re.compile(r"MiB transferred \((\S*) MiB/sec\)")


def _sysbench_runs(text: str) -> list[str]:
    runs = [chunk for chunk in re.split(r"(?m)^(?=sysbench \d)", text) if chunk.strip()]
    if not runs:
        raise ProbeError("sysbench printed nothing")
    return runs


def _number(pattern: re.Pattern[str], text: str, what: str) -> float:
    raw = _search(pattern, text, what)
    try:
        return float(raw)
    except ValueError:
        raise ProbeError(f"sysbench printed {raw!r} for {what}, not a number") from None


def _search(pattern: re.Pattern[str], text: str, what: str) -> str:
    found = pattern.search(text)
    if found is None:
        raise ProbeError(f"sysbench output lacks {what}: " + (text.strip()[:200] or "empty"))
    return found.group(1)


@dataclass(frozen=True)
class CpuProbe:
    """sysbench cpu on one thread, then on every CPU the host has."""

    time_s: int = 10
    settle_s: float = 1.0
    name: str = "cpu"

    @property
    def timeout_s(self) -> float:
        return self.settle_s + 2 * (self.time_s + 5) + 10

    def command(self) -> str:
        """Return the shell command for both runs."""
        run = f"sysbench cpu --time={self.time_s} --threads"
        return wrap(f"{run}=1 run && {run}=$(nproc) run", settle_s=self.settle_s)

    def parse(self, output: str) -> ProbeResult:
        """Read events per second from each sysbench run."""
        sections = split_sections(output)
        text = sections[MARK_TOOL]
        points: dict[str, float] = {}
        for run in _sysbench_runs(text):
            threads = int(_search(_THREADS, run, "the thread count"))
            label = "events/s 1 thread" if threads == 1 else f"events/s {threads} threads"
            points[label] = _number(_EVENTS, run, "'events per second'")
        return ProbeResult(
            probe=self.name,
            tool_version=_search(_SYSBENCH_VERSION, text, "its version line"),
            points=points,
            units=dict.fromkeys(points, "events/s"),
            load=parse_load(sections),
        )


@dataclass(frozen=True)
class MemoryProbe:
    """sysbench memory: sequential read then write bandwidth with 1 MiB blocks on one thread."""

    time_s: int = 10
    settle_s: float = 1.0
    name: str = "memory"

    @property
    def timeout_s(self) -> float:
        return self.settle_s + 2 * (self.time_s + 5) + 10

    def command(self) -> str:
        """Return the shell command for both runs."""
        run = (
            "sysbench memory --memory-block-size=1M --memory-total-size=1024T "
            f"--threads=1 --time={self.time_s} --memory-oper"
        )
        return wrap(f"{run}=read run && {run}=write run", settle_s=self.settle_s)

    def parse(self, output: str) -> ProbeResult:
        """Read MiB/s from each sysbench run."""
        sections = split_sections(output)
        text = sections[MARK_TOOL]
        points: dict[str, float] = {}
        for run in _sysbench_runs(text):
            oper = _search(_MEM_OPER, run, "the memory operation")
            points[f"{oper} 1MiB blocks"] = _number(_MEM_RATE, run, "the transfer rate")
        return ProbeResult(
            probe=self.name,
            tool_version=_search(_SYSBENCH_VERSION, text, "its version line"),
            points=points,
            units=dict.fromkeys(points, "MiB/s"),
            load=parse_load(sections),
        )


# --- SMART --------------------------------------------------------------------------------------

SMART_HEALTH = "health passed"  # 1: the drive's own overall self-assessment passed, 0: failed
# ATA attribute id -> point; counts of sectors or events, read from the raw value.
SMART_ATA_POINTS = {
    5: "reallocated sectors",
    187: "reported uncorrectable",
    188: "command timeouts",
    197: "pending sectors",
    198: "offline uncorrectable",
    199: "UDMA CRC errors",
}
# NVMe SMART / Health Information log field -> (point, unit).
SMART_NVME_POINTS = {
    "media_errors": ("media errors", "count"),
    "critical_warning": ("critical warning", "bits"),
    "percentage_used": ("percentage used", "%"),
    "available_spare": ("available spare", "%"),
}
_LEADING_INT = re.compile(r"\s*(\d+)")


@dataclass(frozen=True)
class SmartProbe:
    """smartctl's health verdict and error counters of one drive, as points to judge by threshold.

    smartctl's exit status is a bitmask: bits 0-1 say the command failed, the higher bits report
    what it found on the disk. The command keeps only bits 0-1, so a failing disk is a reading
    (its JSON carries the whole status) and not a failed probe.
    """

    device: str
    settle_s: float = 0.0  # a counter read does not compete with other work: nothing to settle
    name: str = "smart"

    @property
    def timeout_s(self) -> float:
        return self.settle_s + 60  # a drive spinning up or a slow controller answers in seconds

    def command(self) -> str:
        """Return the shell command reading health and attributes as JSON."""
        tool = f"smartctl -j -H -A {shlex.quote(self.device)}; (exit $(($? & 3)))"
        return wrap(tool, settle_s=self.settle_s)

    def parse(self, output: str) -> ProbeResult:
        """Read the health verdict and counters; an unreadable drive is a ProbeError."""
        sections = split_sections(output)
        doc = _smart_document(sections[MARK_TOOL], self.device)
        version = doc["smartctl"].get("version")
        points, units = _smart_points(doc)
        return ProbeResult(
            probe=self.name,
            tool_version=(
                "smartctl " + ".".join(map(str, version)) if isinstance(version, list) else None
            ),
            points=points,
            units=units,
            load=parse_load(sections),
        )


def _smart_document(text: str, device: str) -> Mapping[str, Any]:
    """The smartctl JSON document, checked by the SMART signal parser (smartctl's own messages)."""
    if not text.strip():
        raise ProbeError(f"smartctl printed nothing for {device} (is smartmontools installed?)")
    try:
        smart.parse_smart(text, host=device, now=datetime.now(UTC))
    except SignalError as exc:
        raise ProbeError(exc.detail) from None
    doc = json.loads(text)  # parse_smart accepted it, so it is JSON
    if not isinstance(doc, dict):
        raise ProbeError(f"smartctl printed {type(doc).__name__} for {device}, expected one object")
    return doc


def _smart_points(doc: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    points: dict[str, float] = {}
    units: dict[str, str] = {}
    status = doc.get("smart_status")
    if isinstance(status, Mapping) and isinstance(status.get("passed"), bool):
        points[SMART_HEALTH], units[SMART_HEALTH] = float(status["passed"]), "1=yes"
    attributes = doc.get("ata_smart_attributes")
    table = attributes.get("table", []) if isinstance(attributes, Mapping) else []
    for attr in table:
        label = SMART_ATA_POINTS.get(attr.get("id"))
        if label is not None:
            points[label], units[label] = _raw_count(attr.get("raw")), "count"
    log = doc.get("nvme_smart_health_information_log")
    for field, (label, unit) in SMART_NVME_POINTS.items():
        value = log.get(field) if isinstance(log, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool):
            points[label], units[label] = float(value), unit
    return points, units


def _raw_count(raw: Any) -> float:
    """An ATA attribute's count: vendors pack more into the raw value (188 "1 1 1")."""
    if not isinstance(raw, Mapping):
        return 0.0
    found = _LEADING_INT.match(str(raw.get("string", "")))
    if found:
        return float(found.group(1))
    value = raw.get("value", 0)
    return float(value) if isinstance(value, int) else 0.0


# --- network ------------------------------------------------------------------------------------


BUSY_WAIT_S = 10.0  # how long a network probe waits for a busy iperf3 server, per direction


def _while_busy(command: str, tries: int = 20, pause_s: float = BUSY_WAIT_S / 20) -> str:
    """Run an iperf3 client again while its server is busy with another test (it serves one
    at a time, and takes a moment after each), then print its output with its exit status."""
    busy = '*"server is busy"*'
    return (
        f"{{ n=0; while out=$({command}); rc=$?; [ $n -lt {tries} ] && "
        f"case $out in {busy}) true;; *) false;; esac; do n=$((n+1)); sleep {pause_s:g}; done; "
        "printf '%s\\n' \"$out\"; (exit $rc); }"
    )


@dataclass(frozen=True)
class NetworkProbe:
    """iperf3 from the host to a server: send, then (with `reverse`) receive with -R.

    Each direction is read from the host's own side: the bits it sent while sending, the bits it
    received while receiving.
    """

    server: str
    port: int = 5201
    seconds: float = 2
    parallel: int = 1
    reverse: bool = True
    settle_s: float = 1.0
    name: str = "network"

    def __post_init__(self) -> None:
        # iperf3 reads -t as a whole number and takes 0 as "run forever"
        if self.seconds < 1 or not float(self.seconds).is_integer():
            raise ValueError(f"seconds must be a whole number of at least 1, got {self.seconds:g}")
        if self.parallel < 1:
            raise ValueError(f"parallel must be at least 1, got {self.parallel}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be 1 to 65535, got {self.port}")

    @property
    def timeout_s(self) -> float:
        runs = 2 if self.reverse else 1
        return self.settle_s + runs * (self.seconds + 5 + BUSY_WAIT_S) + 10

    def command(self) -> str:
        """Return the shell command for one run per direction."""
        args = [
            "iperf3", "-J", "-c", self.server, "-p", str(self.port),
            "-t", f"{self.seconds:g}", "-P", str(self.parallel), "--connect-timeout", "3000",
        ]  # fmt: skip
        tool = _while_busy(shlex.join(args))
        if self.reverse:
            tool += " && " + _while_busy(shlex.join([*args, "-R"]))
        return wrap(tool, settle_s=self.settle_s)

    def parse(self, output: str) -> ProbeResult:
        """Read each direction's bit rate; iperf3's own error becomes the ProbeError."""
        sections = split_sections(output)
        reports = _iperf_reports(sections[MARK_TOOL])
        wanted = [("send Gbit/s", "sum_sent", "forward")]
        if self.reverse:
            wanted.append(("receive Gbit/s", "sum_received", "reverse (-R)"))
        for report, (_, _, direction) in zip(reports, wanted, strict=False):
            if report.get("error"):  # a failed forward run stops the reverse one (&&)
                where = f"{self.server}:{self.port}"
                raise ProbeError(f"iperf3 {direction} to {where} failed: {report['error']}")
        if len(reports) < len(wanted):
            raise ProbeError(f"iperf3 printed {len(reports)} report(s), one per direction expected")
        points = {
            label: _iperf_rate(report, key, direction, self.server, self.port)
            for (label, key, direction), report in zip(wanted, reports, strict=False)
        }
        start = reports[0].get("start")
        version = start.get("version") if isinstance(start, Mapping) else None
        return ProbeResult(
            probe=self.name,
            tool_version=version if isinstance(version, str) else None,
            points=points,
            units=dict.fromkeys(points, "Gbit/s"),
            load=parse_load(sections),
        )


def _iperf_reports(text: str) -> list[dict[str, Any]]:
    """The JSON documents iperf3 -J printed, one per run, in order."""
    decoder = json.JSONDecoder()
    reports: list[dict[str, Any]] = []
    index = text.find("{")
    if index < 0:
        raise ProbeError("iperf3 printed no JSON report: " + (text.strip()[:200] or "no output"))
    while index >= 0:
        try:
            report, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise ProbeError(f"iperf3's JSON report is malformed: {exc}") from exc
        if not isinstance(report, dict):
            raise ProbeError("iperf3's JSON report is not an object")
        reports.append(report)
        index = text.find("{", end)
    return reports


def _iperf_rate(
    report: Mapping[str, Any], key: str, direction: str, server: str, port: int
) -> float:
    end = report.get("end")
    summary = end.get(key) if isinstance(end, Mapping) else None
    bits = summary.get("bits_per_second") if isinstance(summary, Mapping) else None
    if not isinstance(bits, int | float) or isinstance(bits, bool):
        raise ProbeError(f"iperf3 {direction} report lacks end.{key}.bits_per_second")
    if bits <= 0:
        raise ProbeError(f"iperf3 {direction} to {server}:{port} measured nothing (0 bit/s)")
    return float(bits) / 1e9
