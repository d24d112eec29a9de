"""The probes run the real tools here; a block-I/O limit impairs a real disk for the judge.

The impaired disk is a loop device over a scratch file whose I/O the kernel throttles for one
cgroup (cgroup v2 `io.max`, or the v1 blkio throttle where v2 has no io controller); the probe
runs inside that cgroup and measures the throttled device as a slow disk would measure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fleetops.inspection.baselines import Baseline, judge
from fleetops.inspection.probes import (
    DEFAULT_DISK_CURVE,
    CpuProbe,
    DiskProbe,
    MemoryProbe,
    Probe,
    ProbeResult,
)

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("fio", "sysbench", "stress-ng")),
    reason="needs fio, sysbench and stress-ng (apt-get install -y fio sysbench stress-ng)",
)
CURVE = [p.label for p in DEFAULT_DISK_CURVE]


def short(probe: DiskProbe) -> DiskProbe:
    """The same probe cut to ~2 s: a 64 MiB region, 0.3 s per curve point."""
    return replace(probe, size_mib=64, runtime_s=0.3, settle_s=0.3)


# the I/O a throttled device allows: a disk three orders of magnitude below this loop device
LIMIT_IOPS, LIMIT_BPS = 200, 20 * 1024 * 1024


def run(probe: Probe, *, cgroup_procs: Path | None = None) -> ProbeResult:
    """Run a probe's command locally, as an executor would on a host, and parse its output."""
    argv = ["sh", "-c", probe.command()]
    if cgroup_procs is not None:
        argv = ["sh", "-c", f'echo $$ > {cgroup_procs} && exec sh -c "$0"', probe.command()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=probe.timeout_s)
    assert done.returncode == 0, done.stderr
    return probe.parse(done.stdout)


def test_cpu_and_memory_probes_read_real_sysbench() -> None:
    cpu = run(CpuProbe(time_s=1, settle_s=0.3))
    n = os.cpu_count() or 1
    threads = "events/s 1 thread" if n == 1 else f"events/s {n} threads"
    assert set(cpu.points) == {"events/s 1 thread", threads}
    assert all(v > 0 for v in cpu.points.values())
    assert cpu.tool_version is not None
    assert cpu.tool_version[0].isdigit()
    assert cpu.load.cpus == n
    assert cpu.load.busy_during > 0.3  # sysbench itself kept the CPUs busy

    memory = run(MemoryProbe(time_s=1, settle_s=0.3))
    assert set(memory.points) == {"read 1MiB blocks", "write 1MiB blocks"}
    assert memory.points["read 1MiB blocks"] > 100  # MiB/s; any machine moves more than this


def test_disk_probe_on_a_scratch_file_reads_the_whole_curve(tmp_path: Path) -> None:
    res = run(short(DiskProbe.in_directory(str(tmp_path))))
    assert list(res.points) == CURVE
    assert all(v > 0 for v in res.points.values())
    assert res.units["read 1MiB qd8"] == "MiB/s"
    assert res.tool_version is not None
    assert res.tool_version.startswith("fio-")
    assert list(tmp_path.iterdir()) == []  # the scratch file is gone


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and cgroups need root")


@pytest.fixture(scope="module")
def loop_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    image = tmp_path_factory.mktemp("disk") / "disk.img"
    with image.open("wb") as f:
        f.truncate(128 * 1024 * 1024)
    made = subprocess.run(
        ["losetup", "--direct-io=on", "-f", "--show", str(image)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"losetup cannot attach a loop device here: {made.stderr.strip()}")
    device = made.stdout.strip()
    yield device
    subprocess.run(["losetup", "-d", device], check=True)


@pytest.fixture(scope="module")
def baseline(loop_device: str) -> Baseline:
    """The model's baseline: five healthy runs of the disk probe on the loop device.

    The loop device does direct I/O to its file, so reads come from the disk below, not from
    the page cache, and measure like a disk.
    """
    return Baseline.build([run(short(DiskProbe(filename=loop_device))) for _ in range(5)])


def _major_minor(device: str) -> str:
    rdev = os.stat(device).st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


@pytest.fixture
def throttled(loop_device: str) -> Iterator[Path]:
    """A cgroup whose I/O to the loop device the kernel limits; yields its cgroup.procs."""
    dev = _major_minor(loop_device)
    v2 = Path("/sys/fs/cgroup")
    controllers = v2 / "cgroup.controllers"
    if controllers.exists() and "io" in controllers.read_text().split():
        (v2 / "cgroup.subtree_control").write_text("+io")
        group = v2 / f"fleetops-inspection-{os.getpid()}"
        group.mkdir()
        limit = f"{dev} riops={LIMIT_IOPS} wiops={LIMIT_IOPS} rbps={LIMIT_BPS} wbps={LIMIT_BPS}"
        (group / "io.max").write_text(limit)
    elif (v2 / "blkio" / "blkio.throttle.read_iops_device").exists():
        group = v2 / "blkio" / f"fleetops-inspection-{os.getpid()}"
        group.mkdir()
        for kind, value in (("iops", LIMIT_IOPS), ("bps", LIMIT_BPS)):
            for side in ("read", "write"):
                (group / f"blkio.throttle.{side}_{kind}_device").write_text(f"{dev} {value}")
    else:
        pytest.skip("neither cgroup v2 io.max nor the v1 blkio throttle is available")
    yield group / "cgroup.procs"
    group.rmdir()


@needs_root
def test_a_throttled_disk_fails_naming_its_curve_points(
    baseline: Baseline, loop_device: str, throttled: Path
) -> None:
    slow = run(short(DiskProbe(filename=loop_device)), cgroup_procs=throttled)

    # this test box is shared, so the load gates are off here; the next test covers them
    verdict = judge(slow, baseline, busy_load=1e9, busy_cpu=1.0, busy_steal=1.0)

    assert verdict.status == "fail"
    # 200 IOPS and 20 MiB/s against an unthrottled loop device: far below, even when the box
    # is busy enough to slow the baseline runs down
    assert all(ratio < 0.5 for ratio in verdict.ratios.values()), verdict.ratios
    # the reasons name exactly the points below their band, worst first; on a busy box the
    # baseline runs are noisy and a band can reach down to zero (such a point cannot fail),
    # so how many points are named depends on the load, not on the probe
    named = [reason.split(":")[0] for reason in verdict.reasons]
    below = [n for n, band in baseline.bands.items() if slow.points[n] < band.low]
    assert named == sorted(below, key=lambda n: verdict.ratios[n])
    assert named, baseline.bands
    assert set(named) <= set(CURVE)
    assert "% of the model's median (band " in verdict.reasons[0]


@needs_root
def test_a_loaded_cpu_makes_the_verdict_inconclusive_not_fail(
    baseline: Baseline, loop_device: str, throttled: Path
) -> None:
    hogs = str(2 * (os.cpu_count() or 1))
    stress = subprocess.Popen(
        ["stress-ng", "--cpu", hogs, "--timeout", "30s", "--quiet"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until_busy()
        slow = run(short(DiskProbe(filename=loop_device)), cgroup_procs=throttled)
    finally:
        stress.terminate()
        stress.wait(timeout=10)

    verdict = judge(slow, baseline)

    assert slow.load.busy_before > 0.5  # judge calls a machine busy from 25 %
    assert verdict.status == "inconclusive"
    assert any("busy before the probe" in reason for reason in verdict.reasons)
    assert min(verdict.ratios.values()) < 0.5  # slow indeed, but not provably the disk's fault


def wait_until_busy(timeout: float = 10.0) -> None:
    """Wait until the CPUs are nearly all busy: stress-ng's workers take a moment to start."""

    def ticks() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
        return sum(fields), fields[3] + fields[4]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total, idle = ticks()
        time.sleep(0.2)
        total2, idle2 = ticks()
        if total2 > total and 1 - (idle2 - idle) / (total2 - total) > 0.9:
            return
    raise AssertionError(f"stress-ng did not make the CPUs busy within {timeout:g} s")
