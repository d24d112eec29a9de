"""The simulated fleet answers inspection probes as the real tools would, by hardware model."""

from __future__ import annotations

import asyncio

import pytest

from fleetops.changes.executor import Target
from fleetops.inspection.baselines import Baseline, judge
from fleetops.inspection.probes import CpuProbe, DiskProbe, MemoryProbe, Probe, ProbeResult
from fleetops.sim.executor import SimulatedExecutor

DISK = DiskProbe.in_directory("/var/tmp", size_mib=64, runtime_s=0.3, settle_s=0.3)
PROBES: list[Probe] = [DISK, CpuProbe(time_s=1, settle_s=0.3), MemoryProbe(time_s=1)]


def measure(executor: SimulatedExecutor, hostname: str, model: str, probe: Probe) -> ProbeResult:
    target = Target(hostname=hostname, labels={"model": model})
    done = asyncio.run(executor.run(target, probe.command(), timeout=probe.timeout_s))
    assert done.ok, done
    return probe.parse(done.stdout)


@pytest.mark.parametrize("model", ["dn-gen3", "cn-gen4", "gp-gen2"])
def test_healthy_hosts_make_a_baseline_a_broken_disk_fails_it(model: str) -> None:
    executor = SimulatedExecutor(seed=3, hardware_faults={"bad01"})
    for probe in PROBES:
        healthy = [measure(executor, f"ok{i:02d}", model, probe) for i in range(6)]
        baseline = Baseline.build(healthy[:5])
        assert set(baseline.bands) == set(healthy[0].points)
        # hosts of one model differ a little, as real machines do, and the band holds them
        assert len({round(r.points[next(iter(r.points))]) for r in healthy}) == 6
        assert judge(healthy[5], baseline).status == "pass"

        broken = judge(measure(executor, "bad01", model, probe), baseline)
        if probe is DISK:
            assert broken.status == "fail"
            assert len(broken.reasons) == len(DISK.curve)  # every point of the curve collapsed
            assert all(ratio < 0.2 for ratio in broken.ratios.values())
        else:
            assert broken.status == "pass"  # a broken disk does not slow the CPU or memory


def test_models_differ_and_runs_of_one_host_are_close() -> None:
    executor = SimulatedExecutor(seed=3)
    nvme = measure(executor, "a", "cn-gen4", DISK).points["randread 4KiB qd32"]
    sata = measure(executor, "a", "gp-gen2", DISK).points["randread 4KiB qd32"]
    assert nvme > 5 * sata
    again = [measure(executor, "a", "gp-gen2", DISK).points["randread 4KiB qd32"] for _ in range(3)]
    assert max(again) / min(again) < 1.05
    cpu = measure(executor, "a", "cn-gen4", PROBES[1])
    assert set(cpu.points) == {"events/s 1 thread", "events/s 64 threads"}
    assert cpu.load.busy_before < 0.05  # an idle machine, so verdicts are not inconclusive
    assert cpu.load.cpus == 64
