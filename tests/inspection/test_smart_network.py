"""SMART and network probes: smartctl's real JSON (this machine's, and the devices tests' drives),
the threshold verdict, and iperf3 against a real server on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fleetops.inspection.health import smart_verdict
from fleetops.inspection.probes import (
    SMART_HEALTH,
    NetworkProbe,
    ProbeError,
    ProbeResult,
    SmartProbe,
)
from tests.fixtures.sshd import free_port
from tests.inspection.conftest import wait_listening
from tests.inspection.factories import IDLE, wrapped

DRIVES = Path(__file__).parents[1] / "devices" / "data"
needs_smartctl = pytest.mark.skipif(
    shutil.which("smartctl") is None, reason="needs smartctl (apt-get install -y smartmontools)"
)
needs_iperf3 = pytest.mark.skipif(
    shutil.which("iperf3") is None, reason="needs iperf3 (apt-get install -y iperf3)"
)


def drive(name: str) -> ProbeResult:
    """A SMART probe's result on one of the drives the devices tests read."""
    text = (DRIVES / f"smartctl_{name}.json").read_text()
    return SmartProbe("/dev/sdb").parse(wrapped(text))


def run_locally(command: str, *, timeout: float, path: str | None = None) -> str:
    """Run a probe's command through `sh -c`, as an executor would on a host."""
    env = {**os.environ, "PATH": path} if path else None
    done = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=timeout, env=env
    )
    return done.stdout


# --- SMART --------------------------------------------------------------------------------------


def test_a_healthy_ata_drive_reads_zero_counts_and_passes() -> None:
    res = drive("ata_healthy")
    assert res.probe == "smart"
    assert res.tool_version == "smartctl 7.3"
    assert res.points == {
        SMART_HEALTH: 1.0,
        "reallocated sectors": 0.0,
        "reported uncorrectable": 0.0,
        "command timeouts": 0.0,
        "pending sectors": 0.0,
        "offline uncorrectable": 0.0,
    }
    assert res.units["reallocated sectors"] == "count"
    verdict = smart_verdict(res)
    assert verdict.status == "pass"
    assert verdict.reasons == [
        "health self-assessment passed; reallocated sectors, pending sectors, "
        "offline uncorrectable, reported uncorrectable all 0"
    ]


def test_a_failing_ata_drive_fails_naming_each_problem() -> None:
    res = drive("ata_failing")
    assert res.points[SMART_HEALTH] == 0.0
    assert res.points["command timeouts"] == 1.0  # raw "1 1 1", not the packed 4295032833
    verdict = smart_verdict(res)
    assert verdict.status == "fail"
    assert verdict.reasons == [
        "the drive's overall health self-assessment failed",
        "reallocated sectors: 61240",
        "pending sectors: 248",
        "offline uncorrectable: 248",
        "reported uncorrectable: 412",
    ]


def test_nvme_media_errors_fail_a_drive_whose_health_passed() -> None:
    res = drive("nvme_media_errors")
    assert res.points == {
        SMART_HEALTH: 1.0,
        "media errors": 7.0,
        "critical warning": 0.0,
        "percentage used": 4.0,
        "available spare": 100.0,
    }
    assert res.units["percentage used"] == "%"
    assert smart_verdict(res).reasons == ["media errors: 7"]


def test_an_nvme_critical_warning_is_named_bit_by_bit() -> None:
    verdict = smart_verdict(drive("nvme_worn_out"))
    assert verdict.status == "fail"
    assert verdict.reasons == [
        "the drive's overall health self-assessment failed",
        "critical warning 13: available spare below threshold, reliability degraded, "
        "media placed in read-only mode",
    ]


def test_a_drive_without_smart_is_a_probe_error_with_smartctls_message() -> None:
    with pytest.raises(ProbeError) as info:
        drive("vda_no_smart")
    assert str(info.value) == (
        "smartctl could not read /dev/vda: /dev/vda: Unable to detect device type (exit status 1)"
    )


def test_a_reading_with_nothing_to_judge_is_inconclusive() -> None:
    res = ProbeResult("smart", "smartctl 7.3", {"command timeouts": 3.0}, {}, IDLE)
    verdict = smart_verdict(res)
    assert verdict.status == "inconclusive"
    with pytest.raises(ValueError, match="a disk result is not a SMART reading"):
        smart_verdict(ProbeResult("disk", None, {}, {}, IDLE))


@needs_smartctl
def test_real_smartctl_on_a_device_without_smart_raises_its_message() -> None:
    probe = SmartProbe("/dev/null")
    out = run_locally(probe.command(), timeout=probe.timeout_s)
    with pytest.raises(ProbeError) as info:
        probe.parse(out)
    assert str(info.value) == (
        "smartctl could not read /dev/null: /dev/null: Unable to detect device type (exit status 1)"
    )


def test_a_failing_disks_exit_status_is_a_reading_not_a_failed_command(tmp_path: Path) -> None:
    """smartctl exits 88 for the failing drive (disk-problem bits); the probe's command exits 0."""
    document = DRIVES / "smartctl_ata_failing.json"
    fake = tmp_path / "smartctl"
    fake.write_text(f"#!/bin/sh\ncat {document}\nexit 88\n")
    fake.chmod(0o755)
    probe = SmartProbe("/dev/sdb")
    path = f"{tmp_path}:{os.environ['PATH']}"
    done = subprocess.run(
        ["sh", "-c", probe.command()],
        capture_output=True,
        text=True,
        timeout=probe.timeout_s,
        env={**os.environ, "PATH": path},
    )
    assert done.returncode == 0, done.stderr
    assert smart_verdict(probe.parse(done.stdout)).status == "fail"
    fake.write_text(f"#!/bin/sh\ncat {document}\nexit 2\n")  # bit 1: the device did not open
    failed = subprocess.run(
        ["sh", "-c", probe.command()], capture_output=True, env={**os.environ, "PATH": path}
    )
    assert failed.returncode == 2


# --- network ------------------------------------------------------------------------------------


@needs_iperf3
def test_network_probe_measures_both_directions(iperf3_server: int) -> None:
    probe = NetworkProbe("127.0.0.1", port=iperf3_server, seconds=1, settle_s=0.1)
    res = probe.parse(run_locally(probe.command(), timeout=probe.timeout_s))
    assert set(res.points) == {"send Gbit/s", "receive Gbit/s"}
    assert all(v > 0 for v in res.points.values()), res.points
    assert res.units == {"send Gbit/s": "Gbit/s", "receive Gbit/s": "Gbit/s"}
    assert res.tool_version is not None
    assert res.tool_version.startswith("iperf 3.")
    assert res.load.busy_during > 0  # iperf3 itself kept the CPUs busy


@needs_iperf3
def test_a_one_off_server_serves_a_forward_only_probe() -> None:
    port = free_port()
    server = subprocess.Popen(
        ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, server)
        probe = NetworkProbe("127.0.0.1", port=port, seconds=1, settle_s=0.1, reverse=False)
        res = probe.parse(run_locally(probe.command(), timeout=probe.timeout_s))
        server.wait(timeout=5)  # -1: it served one test and left
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=5)
    assert list(res.points) == ["send Gbit/s"]
    assert res.points["send Gbit/s"] > 0


@needs_iperf3
def test_no_server_is_a_probe_error_with_iperf3s_message() -> None:
    port = free_port()
    probe = NetworkProbe("127.0.0.1", port=port, seconds=1, settle_s=0.1)
    with pytest.raises(ProbeError) as info:
        probe.parse(run_locally(probe.command(), timeout=probe.timeout_s))
    assert str(info.value) == (
        f"iperf3 forward to 127.0.0.1:{port} failed: "
        "unable to connect to server: Connection refused"
    )


def test_network_probe_refuses_what_iperf3_would_misread() -> None:
    with pytest.raises(ValueError, match=r"whole number of at least 1, got 0\.5"):
        NetworkProbe("iperf.example", seconds=0.5)  # iperf3 would read -t 0: run forever
    with pytest.raises(ValueError, match="parallel must be at least 1"):
        NetworkProbe("iperf.example", parallel=0)
    command = NetworkProbe("h1; reboot", parallel=4).command()
    assert "$(iperf3 -J -c 'h1; reboot' -p 5201 -t 2 -P 4 --connect-timeout 3000)" in command
    assert command.count("-R") == 1
