"""Hardware signals from a Prometheus node_exporter scrape (`/metrics`, text exposition format).

What counts as a hardware problem here:

- `node_edac_correctable_errors_total` / `node_edac_uncorrectable_errors_total` rising since the
  previous scrape of the same host: `edac_ce` (warning) / `edac_ue` (critical), with the csrows
  whose counters rose (the same delta rules as the EDAC adapter);
- a physical interface that is administratively up (IFF_UP in `node_network_flags`) with
  `node_network_up == 0` or `node_network_carrier == 0`: `nic_down`; loopback and virtual
  interfaces (bridges, veth, tunnels, container networks: `VIRTUAL`) are skipped;
- a hwmon alarm or fault (`node_hwmon_fan_alarm`, `node_hwmon_temp_crit_alarm_celsius`, ...):
  `fan`, `thermal` or `hwmon_alarm`, critical for faults and critical limits;
- `node_filesystem_device_error == 1` on a block-device filesystem: `fs_unreadable` (warning);
  statfs failing is as often a stale or forbidden mount as a broken disk, so it is not `fs_error`.

`node_disk_*` are throughput and latency counters, not errors: they are not read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fleetops.devices.signals.exceptions import SignalError, SourceUnavailable
from fleetops.devices.signals.service import Signal
from fleetops.findings.enums import Severity

SOURCE = "node_exporter"
ACCEPT = "text/plain; version=0.0.4"  # the classic text format, not protobuf or OpenMetrics
VIRTUAL = re.compile(
    r"^(lo|docker\d*|veth.*|br-.*|virbr.*|vnet\d+|tun\d+|tap.*|cni.*|flannel.*|cali.*|vxlan.*"
    r"|kube-.*|dummy\d*|wg\d+|tailscale\d*|genev_sys_.*|ovs-system)$"
)
IFF_UP = 0x1
ARPHRD_LOOPBACK = 772
EDAC = {
    "node_edac_correctable_errors_total": ("edac_ce", Severity.WARNING, "corrected"),
    "node_edac_uncorrectable_errors_total": ("edac_ue", Severity.CRITICAL, "uncorrectable"),
}
CSROWS = {
    "node_edac_correctable_errors_total": "node_edac_csrow_correctable_errors_total",
    "node_edac_uncorrectable_errors_total": "node_edac_csrow_uncorrectable_errors_total",
}
HWMON_SIGNATURE = {"fan": "fan", "temp": "thermal"}
HWMON_CRITICAL = frozenset({"fault", "crit", "lcrit", "emergency"})
# The series the next delta needs; the rest of a scrape need not be kept.
COUNTER_PREFIX = "node_edac_"

Labels = dict[str, str]
Samples = dict[str, list[tuple[Labels, float]]]


def scrape(url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> str:
    """GET `url` (a node_exporter `/metrics`) and return its text; SourceUnavailable if it fails."""
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.get(url, headers={"Accept": ACCEPT})
    except httpx.TimeoutException:
        raise SourceUnavailable(f"{url} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"cannot scrape {url}: {exc}") from None
    if response.status_code != 200:
        raise SourceUnavailable(
            f"{url} answered HTTP {response.status_code}: {response.text[:200].strip()!r}"
        )
    if response.headers.get("content-type", "").startswith("text/html"):
        raise SourceUnavailable(f"{url} answered a web page, not metrics: is the path /metrics?")
    return response.text


def counters_only(text: str) -> str:
    """The EDAC counter series of a scrape: what the next scrape's deltas are computed from."""
    keep = [
        line
        for line in text.splitlines()
        if line.startswith(COUNTER_PREFIX)
        or line.startswith((f"# HELP {COUNTER_PREFIX}", f"# TYPE {COUNTER_PREFIX}"))
    ]
    return "\n".join(keep) + "\n" if keep else ""


def parse_node_metrics(
    text: str,
    *,
    host: str,
    now: datetime,
    previous: str | None = None,
    virtual: re.Pattern[str] = VIRTUAL,
) -> list[Signal]:
    """The hardware problems one scrape shows (counters compared with `previous`)."""
    current = read_metrics(text, "metrics")
    if not any(name.startswith("node_") for name in current):
        raise SignalError("metrics hold no node_* series: is this a node_exporter /metrics page?")
    before = read_metrics(previous, "previous metrics") if previous else {}
    return [
        *_edac(current, before, host, now),
        *_network(current, host, now, virtual),
        *_hwmon(current, host, now),
        *_filesystems(current, host, now),
    ]


def read_metrics(text: str, what: str) -> Samples:
    """Every sample by name; SignalError naming the first line that is not the text format."""
    if not isinstance(text, str):
        raise SignalError(f"{what} must be the text of a /metrics page")
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                series = samples.setdefault(sample.name, [])
                if math.isfinite(sample.value):  # NaN and ±Inf say "no reading", not an error
                    series.append((dict(sample.labels), sample.value))
    except (ValueError, IndexError, KeyError, TypeError):
        number, line = _first_bad_line(text)
        raise SignalError(
            f"{what} line {number} is not in the Prometheus text format: {line[:200]!r}"
        ) from None
    return samples


def _first_bad_line(text: str) -> tuple[int, str]:
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            list(text_string_to_metric_families(line + "\n"))
        except (ValueError, IndexError, KeyError, TypeError):
            return number, line
    return 0, text[:200]  # each line alone is fine: their combination is not


def _delta(now: float, before: float | None) -> float:
    before = before or 0.0
    return now - before if now >= before else now


def _edac(current: Samples, before: Samples, host: str, now: datetime) -> Iterator[Signal]:
    for name, (signature, severity, text) in EDAC.items():
        old = {labels.get("controller"): value for labels, value in before.get(name, [])}
        for labels, value in current.get(name, []):
            controller = labels.get("controller", "?")
            count = int(_delta(value, old.get(controller)))
            if count <= 0:
                continue
            rows = _csrows(current, before, CSROWS[name], controller)
            yield Signal(
                host=host,
                source=SOURCE,
                signature=signature,
                severity=severity,
                title=f"{host}: {count} {text} memory error(s) on memory controller {controller}",
                details={
                    "controller": controller,
                    "count": count,
                    "total": int(value),
                    "locations": rows,
                    "metric": name,
                },
                observed_at=now,
                component=f"mc{controller}",
            )


def _csrows(
    current: Samples, before: Samples, name: str, controller: str
) -> list[dict[str, object]]:
    old = {
        labels.get("csrow"): value
        for labels, value in before.get(name, [])
        if labels.get("controller") == controller
    }
    return [
        {"location": f"csrow{labels.get('csrow')}", "count": n}
        for labels, value in current.get(name, [])
        if labels.get("controller") == controller
        and (n := int(_delta(value, old.get(labels.get("csrow"))))) > 0
    ]


def _by_device(samples: Samples, name: str) -> dict[str, float]:
    return {labels.get("device", ""): value for labels, value in samples.get(name, [])}


def _network(
    current: Samples, host: str, now: datetime, virtual: re.Pattern[str]
) -> Iterator[Signal]:
    up = _by_device(current, "node_network_up")
    carrier = _by_device(current, "node_network_carrier")
    flags = _by_device(current, "node_network_flags")
    kinds = _by_device(current, "node_network_protocol_type")
    states = {
        labels.get("device", ""): labels.get("operstate", "")
        for labels, _ in current.get("node_network_info", [])
    }
    for device in sorted(set(up) | set(carrier)):
        if virtual.match(device) or kinds.get(device) == ARPHRD_LOOPBACK:
            continue
        if device in flags and not int(flags[device]) & IFF_UP:
            continue  # administratively down: nobody meant it to carry traffic
        if up.get(device, 1) != 0 and carrier.get(device, 1) != 0:
            continue
        yield Signal(
            host=host,
            source=SOURCE,
            signature="nic_down",
            severity=Severity.WARNING,
            title=f"{host}: link down on {device} (administratively up)",
            details={
                "interface": device,
                "operstate": states.get(device, ""),
                "up": up.get(device),
                "carrier": carrier.get(device),
            },
            observed_at=now,
            component=device,
        )


def _hwmon(current: Samples, host: str, now: datetime) -> Iterator[Signal]:
    for name, series in sorted(current.items()):
        if not name.startswith("node_hwmon_"):
            continue
        words = name.removeprefix("node_hwmon_").split("_")
        if not {"alarm", "fault"} & set(words):
            continue
        signature = HWMON_SIGNATURE.get(words[0], "hwmon_alarm")
        severity = Severity.CRITICAL if HWMON_CRITICAL & set(words) else Severity.WARNING
        for labels, value in series:
            if value <= 0:
                continue
            part = f"{labels.get('chip', '?')}/{labels.get('sensor', '?')}"
            yield Signal(
                host=host,
                source=SOURCE,
                signature=signature,
                severity=severity,
                title=f"{host}: hardware monitor {name} set on {part}",
                details={
                    "metric": name,
                    "chip": labels.get("chip", ""),
                    "sensor": labels.get("sensor", ""),
                },
                observed_at=now,
                component=f"{part}:{name}",
            )


def _filesystems(current: Samples, host: str, now: datetime) -> Iterator[Signal]:
    for labels, value in current.get("node_filesystem_device_error", []):
        device = labels.get("device", "")
        if value != 1 or not device.startswith("/dev/"):
            continue
        mountpoint = labels.get("mountpoint", "")
        yield Signal(
            host=host,
            source=SOURCE,
            signature="fs_unreadable",
            severity=Severity.WARNING,
            title=f"{host}: cannot read filesystem stats of {mountpoint} ({device})",
            details={
                "device": device,
                "mountpoint": mountpoint,
                "fstype": labels.get("fstype", ""),
            },
            observed_at=now,
            component=mountpoint,
        )
