"""node_exporter adapter against the real `prometheus-node-exporter` binary on a loopback port.

The exporter reads a sysfs tree built here (`--path.sysfs`): EDAC counters, network interfaces
and a hardware monitor, as the kernel lays them out; its collectors turn them into the series the
adapter reads, and the test changes the tree between scrapes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from fleetops.devices.signals.exceptions import SignalError, SourceUnavailable
from fleetops.devices.signals.node_exporter import counters_only, parse_node_metrics, scrape
from fleetops.findings.enums import Severity
from tests.devices.test_signals_edac import write_edac
from tests.fixtures.server import free_port

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
COLLECTORS = ("edac", "netclass", "hwmon", "filesystem")


def write_interface(sysfs: Path, name: str, *, operstate: str, flags: int, **extra: str) -> None:
    """A /sys/class/net/<name> directory with the attributes the netclass collector reads."""
    base = sysfs / "class" / "net" / name
    base.mkdir(parents=True, exist_ok=True)
    files = {
        "type": "1",
        "mtu": "1500",
        "address": "3c:ec:ef:00:00:01",
        "broadcast": "ff:ff:ff:ff:ff:ff",
        "operstate": operstate,
        "flags": hex(flags),
        **extra,
    }
    for attr, text in files.items():
        (base / attr).write_text(text + "\n")


def build_sysfs(root: Path) -> Path:
    write_edac(root, 0, ce=3, ue=0, dimms={0: (3, 0)})
    write_interface(root, "lo", operstate="unknown", flags=0x9, type="772")
    write_interface(root, "eth0", operstate="up", flags=0x1003, carrier="1")
    write_interface(root, "eth1", operstate="down", flags=0x1003, carrier="0")  # cable pulled
    write_interface(root, "eth2", operstate="down", flags=0x1002)  # unused port, admin down
    write_interface(root, "docker0", operstate="down", flags=0x1003, carrier="0")
    hwmon = root / "class" / "hwmon" / "hwmon0"
    hwmon.mkdir(parents=True)
    for attr, text in {
        "name": "nct6779",
        "fan1_input": "0",
        "fan1_alarm": "1",
        "fan2_input": "5400",
        "fan2_alarm": "0",
        "temp1_input": "97000",
        "temp1_crit_alarm": "1",
    }.items():
        (hwmon / attr).write_text(text + "\n")
    return root


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return build_sysfs(tmp_path / "sys")


@pytest.fixture
def exporter(sysfs: Path, tmp_path: Path) -> Iterator[str]:
    """The real node_exporter on a free loopback port, reading `sysfs`; its /metrics URL."""
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        pytest.skip("node_exporter is not installed (apt-get install prometheus-node-exporter)")
    port = free_port()
    log = (tmp_path / "node_exporter.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--path.sysfs={sysfs}",
            "--collector.disable-defaults",
            *(f"--collector.{c}" for c in COLLECTORS),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"node_exporter did not start: {(tmp_path / 'node_exporter.log').read_text()}"
                )
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_a_real_scrape_shows_the_trees_problems(exporter: str) -> None:
    text = scrape(exporter)
    assert 'node_network_up{device="eth1"} 0' in text  # the exporter's own series
    signals = parse_node_metrics(text, host="h001", now=NOW)
    found = sorted((s.signature, s.severity, s.component) for s in signals)
    assert found == [
        ("edac_ce", Severity.WARNING, "mc0"),
        ("fan", Severity.WARNING, "nct6779/fan1:node_hwmon_fan_alarm"),
        ("nic_down", Severity.WARNING, "eth1"),
        ("thermal", Severity.CRITICAL, "nct6779/temp1:node_hwmon_temp_crit_alarm_celsius"),
    ]
    nic = next(s for s in signals if s.signature == "nic_down")
    assert nic.details == {"interface": "eth1", "operstate": "down", "up": 0.0, "carrier": 0.0}
    assert nic.title == "h001: link down on eth1 (administratively up)"
    edac = next(s for s in signals if s.signature == "edac_ce")
    assert edac.details["count"] == 3
    assert edac.details["locations"] == [{"location": "csrow0", "count": 3}]


def test_counters_report_increases_between_scrapes(exporter: str, sysfs: Path) -> None:
    first = scrape(exporter)
    kept = counters_only(first)
    assert kept.startswith("# HELP node_edac_")
    assert all("node_edac_" in line for line in kept.splitlines())
    write_edac(sysfs, 0, ce=5, ue=1, dimms={0: (5, 1)})
    later = parse_node_metrics(scrape(exporter), host="h001", now=NOW, previous=kept)
    edac = sorted(
        (s.signature, s.severity, s.details["count"], s.details["total"])
        for s in later
        if s.signature.startswith("edac")
    )
    assert edac == [("edac_ce", Severity.WARNING, 2, 5), ("edac_ue", Severity.CRITICAL, 1, 1)]
    again = counters_only(scrape(exporter))
    steady = parse_node_metrics(scrape(exporter), host="h001", now=NOW, previous=again)
    assert [s.signature for s in steady if s.signature.startswith("edac")] == []


def test_interfaces_meant_to_be_down_are_not_problems(exporter: str, sysfs: Path) -> None:
    write_interface(sysfs, "eth1", operstate="up", flags=0x1003, carrier="1")  # cable back
    signals = parse_node_metrics(scrape(exporter), host="h001", now=NOW)
    assert "nic_down" not in {s.signature for s in signals}


def test_filesystem_stat_errors_on_block_devices() -> None:
    text = (
        "# TYPE node_filesystem_device_error gauge\n"
        'node_filesystem_device_error{device="/dev/sdb1",fstype="xfs",mountpoint="/data1"} 1\n'
        'node_filesystem_device_error{device="/dev/sda1",fstype="ext4",mountpoint="/"} 0\n'
        'node_filesystem_device_error{device="nfs:/export",fstype="nfs4",mountpoint="/mnt"} 1\n'
        'node_disk_io_time_seconds_total{device="sdb"} 98765.4\n'
    )
    [signal] = parse_node_metrics(text, host="h001", now=NOW)
    assert (signal.signature, signal.severity, signal.component) == (
        "fs_unreadable",
        Severity.WARNING,
        "/data1",
    )


def test_missing_readings_are_not_errors() -> None:
    text = (
        'node_edac_correctable_errors_total{controller="0"} NaN\n'
        'node_network_up{device="eth0"} +Inf\n'
        'node_hwmon_fan_alarm{chip="nct6779",sensor="fan1"} NaN\n'
    )
    assert parse_node_metrics(text, host="h001", now=NOW) == []


def test_unreachable_exporter_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    with pytest.raises(SourceUnavailable, match=rf"^cannot scrape {url}: .*refused"):
        scrape(url, timeout=2)


def test_silent_exporter_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"
        with pytest.raises(SourceUnavailable) as caught:
            scrape(url, timeout=0.3)
    assert caught.value.detail == f"{url} did not answer within 0.3 s"


def test_wrong_page_is_a_clear_error(exporter: str) -> None:
    wrong = exporter.replace("/metrics", "/nope")  # node_exporter answers its landing page
    with pytest.raises(SourceUnavailable) as caught:
        scrape(wrong)
    assert caught.value.detail == f"{wrong} answered a web page, not metrics: is the path /metrics?"
    html = httpx.get(wrong).text
    with pytest.raises(SignalError, match=r"^metrics line 1 is not in the Prometheus text format"):
        parse_node_metrics(html, host="h001", now=NOW)


def test_error_status_is_a_clear_error() -> None:
    def proxy_refusal(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="upstream node down\n")

    with pytest.raises(SourceUnavailable) as caught:
        scrape("http://dn-001:9100/metrics", transport=httpx.MockTransport(proxy_refusal))
    assert caught.value.detail == (
        "http://dn-001:9100/metrics answered HTTP 503: 'upstream node down'"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'node_load1 0.5\nnode_network_up{device="eth0" 1\n',
            "metrics line 2 is not in the Prometheus text format: "
            "'node_network_up{device=\"eth0\" 1'",
        ),
        (
            "# HELP up whether up\nup 1\n",
            "metrics hold no node_* series: is this a node_exporter /metrics page?",
        ),
        ("", "metrics hold no node_* series: is this a node_exporter /metrics page?"),
    ],
)
def test_malformed_metrics_are_refused_precisely(text: str, message: str) -> None:
    with pytest.raises(SignalError) as caught:
        parse_node_metrics(text, host="h001", now=NOW)
    assert caught.value.detail == message
