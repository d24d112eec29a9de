"""The simulated fleet's executor: deterministic, failure injection, downtime and reboots."""

from __future__ import annotations

import asyncio

import pytest

from fleetops.changes.executor import Result, Target
from fleetops.sim.executor import BOOT_ID, SimulatedExecutor

pytestmark = pytest.mark.anyio

HOSTS = [Target(f"dn-{i:03d}") for i in range(40)]


async def outcomes(executor: SimulatedExecutor, *, reverse: bool = False) -> list[int | None]:
    """Five steps on each host, all at once; hosts interleaved in order or in reverse."""
    hosts = list(reversed(HOSTS)) if reverse else HOSTS
    jobs = [(h, f"step {n}") for n in range(5) for h in hosts]
    results = await asyncio.gather(*(executor.run(h, c, timeout=5) for h, c in jobs))
    by_job = {(h.hostname, c): r.exit_code for (h, c), r in zip(jobs, results, strict=True)}
    return [by_job[key] for key in sorted(by_job)]


async def test_same_seed_same_outcomes_whatever_the_interleaving() -> None:
    first = await outcomes(SimulatedExecutor(seed=3, failure_rate=0.3, latency=0.002))
    second = await outcomes(
        SimulatedExecutor(seed=3, failure_rate=0.3, latency=0.002), reverse=True
    )
    other_seed = await outcomes(SimulatedExecutor(seed=4, failure_rate=0.3, latency=0.002))
    assert first == second
    assert first != other_seed
    assert set(first) == {0, 1}


async def test_failure_rate_is_the_fraction_that_fails() -> None:
    executor = SimulatedExecutor(seed=1, failure_rate=0.2)
    results = [await executor.run(HOSTS[i % 40], "true", timeout=5) for i in range(2000)]
    failed = [r for r in results if r.exit_code == 1]
    assert 0.17 < len(failed) / len(results) < 0.23
    assert all(r.stderr == "simulated failure\n" for r in failed)


async def test_latency_is_jittered_around_the_mean() -> None:
    executor = SimulatedExecutor(seed=1, latency=0.05)
    results = await asyncio.gather(*(executor.run(h, "true", timeout=5) for h in HOSTS))
    durations = [r.duration_s for r in results]
    assert all(0.025 <= d < 0.2 for d in durations)
    assert len({round(d, 3) for d in durations}) > 10  # not all the same
    assert 0.04 < sum(durations) / len(durations) < 0.08


async def test_unreachable_hosts_and_recorded_commands() -> None:
    executor = SimulatedExecutor(unreachable={"dn-001"}, history=3)
    down = await executor.run(Target("dn-001"), "uptime", timeout=5)
    assert down.exit_code is None
    assert down.error == "unreachable: simulated host dn-001 is down"
    for n in range(5):
        await executor.run(Target("dn-002"), f"echo {n}", timeout=5)
    assert executor.commands("dn-002") == ["echo 2", "echo 3", "echo 4"]  # bounded, newest kept
    assert executor.commands("dn-001") == ["uptime"]
    assert executor.commands("never-seen") == []


async def test_a_reboot_takes_the_host_down_and_changes_its_boot_id() -> None:
    now = [100.0]
    executor = SimulatedExecutor(seed=5, reboot_s=30, clock=lambda: now[0])
    host = Target("dn-007")
    before = (await executor.run(host, f"cat {BOOT_ID}", timeout=5)).stdout
    assert (await executor.run(host, "systemctl reboot", timeout=5)).ok
    assert "rebooting" in (await executor.run(host, "true", timeout=5)).error
    now[0] += 31
    after = (await executor.run(host, f"cat {BOOT_ID}", timeout=5)).stdout
    assert len(before.strip()) == 36
    assert after != before
    # The same seed replays the same boot ids.
    replay = SimulatedExecutor(seed=5)
    assert (await replay.run(host, f"cat {BOOT_ID}", timeout=5)).stdout == before


async def test_files_put_are_read_back_and_hostname_is_the_target() -> None:
    executor = SimulatedExecutor()
    host = Target("dn-010")
    put = await executor.put_file(host, "/etc/motd", b"hello\n", mode=0o600, timeout=5)
    assert put == Result(exit_code=0, duration_s=put.duration_s)
    assert executor.host("dn-010").modes["/etc/motd"] == 0o600
    result = await executor.run(host, "cat /etc/motd /nope; hostname", timeout=5)
    assert result.stdout == "hello\ndn-010\n"
    assert result.stderr == "cat: /nope: No such file or directory\n"
    assert (await executor.run(host, "false || echo fallback", timeout=5)).stdout == "fallback\n"
    assert (await executor.run(host, "false && echo no", timeout=5)).exit_code == 1
