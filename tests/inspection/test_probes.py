"""Parsers of probe output: load readings, fio JSON, sysbench text, and malformed output."""

from __future__ import annotations

import json
import re

import pytest

from fleetops.inspection.probes import (
    MARK_TOOL,
    CpuProbe,
    DiskPoint,
    DiskProbe,
    MemoryProbe,
    ProbeError,
)
from tests.inspection.factories import proc, wrapped

CURVE = (
    DiskPoint("randread 4KiB qd1", "randread", "4k", 1, "IOPS"),
    DiskPoint("write 1MiB qd8", "write", "1m", 8, "MiB/s"),
)
PROBE = DiskProbe(filename="/tmp/x", curve=CURVE)


def fio_report(jobs: list[dict[str, object]]) -> str:
    return "note: a warning fio printed first\n" + json.dumps(
        {"fio version": "fio-3.33", "jobs": jobs}
    )


def job(
    name: str, *, read_iops: float = 0, write_bw: float = 0, error: int = 0
) -> dict[str, object]:
    return {
        "jobname": name,
        "error": error,
        "read": {"iops": read_iops, "bw": 0},
        "write": {"iops": 0, "bw": write_bw},
    }


def test_disk_parse_reads_each_point_in_its_unit_and_the_load() -> None:
    out = wrapped(fio_report([job("p0", read_iops=12000.5), job("p1", write_bw=2048 * 1024)]))

    res = PROBE.parse(out)

    assert res.tool_version == "fio-3.33"
    assert res.points == {"randread 4KiB qd1": 12000.5, "write 1MiB qd8": 2048.0}
    assert res.units == {"randread 4KiB qd1": "IOPS", "write 1MiB qd8": "MiB/s"}
    assert res.load.cpus == 2
    assert (res.load.load1_before, res.load.load1_after) == (0.5, 0.9)
    assert res.load.busy_before == pytest.approx(0.05)
    assert res.load.busy_during == pytest.approx(1.0)
    assert res.load.steal_during == 0.0


def test_steal_is_the_hypervisors_share_while_the_tool_ran() -> None:
    out = wrapped(
        fio_report([job("p0", read_iops=1), job("p1", write_bw=1)]),
        after=proc(0.9, 1110, 9190, steal=100),
    )
    assert PROBE.parse(out).load.steal_during == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("", "lacks the section"),
        (wrapped("")[: wrapped("").index(MARK_TOOL) + 20], "did not run to completion"),
        (wrapped("fio: failed to open /dev/nvme9n1"), "fio printed no JSON report: fio: failed"),
        (wrapped('{"jobs": [ {"jobname": "p0",'), "fio's JSON report is malformed"),
        (wrapped(fio_report([job("p0", read_iops=5)])), "no job for 'write 1MiB qd8'"),
        (wrapped(fio_report([job("p0", error=5), job("p1")])), "failed with error 5"),
        (wrapped(fio_report([job("p0"), job("p1", write_bw=1)])), "measured nothing"),
        (
            wrapped(fio_report([{"jobname": "p0", "error": 0}, job("p1", write_bw=1)])),
            "lacks read figures",
        ),
        (
            wrapped(fio_report([job("p0", read_iops=1), job("p1", write_bw=1)]), before="x"),
            "unreadable /proc/loadavg or /proc/stat before",
        ),
    ],
)
def test_disk_parse_says_what_is_wrong_with_malformed_output(output: str, message: str) -> None:
    with pytest.raises(ProbeError, match=re.escape(message)):
        PROBE.parse(output)


SYSBENCH_CPU = """sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)
Number of threads: {threads}
CPU speed:
    events per second:  {eps}
"""


def test_cpu_parse_names_points_by_thread_count() -> None:
    out = wrapped(
        SYSBENCH_CPU.format(threads=1, eps="1662.74") + SYSBENCH_CPU.format(threads=16, eps="2.5e")
    )
    with pytest.raises(
        ProbeError, match=re.escape("printed '2.5e' for 'events per second', not a number")
    ):
        CpuProbe().parse(out)
    out = wrapped(
        SYSBENCH_CPU.format(threads=1, eps="1662.74") + SYSBENCH_CPU.format(threads=16, eps="20000")
    )
    res = CpuProbe().parse(out)
    assert res.points == {"events/s 1 thread": 1662.74, "events/s 16 threads": 20000.0}
    assert res.tool_version == "1.0.20"


def test_cpu_parse_without_a_rate_says_so() -> None:
    out = wrapped("sysbench 1.0.20\nNumber of threads: 1\nFATAL: out of memory\n")
    with pytest.raises(ProbeError, match=r"(?s)lacks 'events per second'.*FATAL"):
        CpuProbe().parse(out)


def test_memory_parse_and_missing_tool() -> None:
    run = "sysbench 1.0.20\n  operation: {op}\n{rate} MiB transferred ({rate} MiB/sec)\n"
    res = MemoryProbe().parse(
        wrapped(run.format(op="read", rate="30377.67") + run.format(op="write", rate="11705.97"))
    )
    assert res.points == {"read 1MiB blocks": 30377.67, "write 1MiB blocks": 11705.97}
    assert res.units["read 1MiB blocks"] == "MiB/s"
    with pytest.raises(ProbeError, match="sysbench printed nothing"):
        MemoryProbe().parse(wrapped(""))


def test_disk_command_runs_one_stonewalled_job_per_point_within_a_bound() -> None:
    probe = DiskProbe.in_directory("/data/", size_mib=64, runtime_s=0.5, settle_s=0.2)
    cmd = probe.command()
    assert "--filename=/data/fleetops-inspection.fio" in cmd
    assert "--runtime=500ms" in cmd
    assert cmd.count("--stonewall") == 5
    assert "rm -f /data/fleetops-inspection.fio" in cmd
    assert 0 < probe.timeout_s < 60
