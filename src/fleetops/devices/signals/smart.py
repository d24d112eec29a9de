"""SMART health from `smartctl -j -a /dev/X` (smartmontools 7+ JSON), for ATA, NVMe and SCSI disks.

A disk's SMART data is a state, not an event: each reading that still shows a problem reports it
again (the finding's `last_seen` moves on). Per disk, at most one signal per signature, listing
every attribute behind it:

- `smart_failing` (critical): the drive's own overall verdict is FAILED, an ATA attribute is
  failing now, or an NVMe critical warning says reliability is degraded or media is read-only;
- `smart_media_errors` (critical): data the drive could not read: ATA 187 Reported_Uncorrect,
  197 Current_Pending_Sector, 198 Offline_Uncorrectable, NVMe media errors, SCSI uncorrected errors;
- `smart_degraded` (warning): wear that has not lost data yet: ATA 5 Reallocated_Sector_Ct,
  188 Command_Timeout, NVMe spare below threshold, over temperature, or 100 % of rated endurance
  used, SCSI grown defects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleetops.devices.signals.exceptions import SignalError
from fleetops.devices.signals.service import Signal
from fleetops.findings.enums import Severity

SOURCE = "smart"
FAILING = "smart_failing"
MEDIA = "smart_media_errors"
DEGRADED = "smart_degraded"
# ATA attribute id -> signature; any raw value above zero counts.
ATA_ATTRIBUTES = {5: DEGRADED, 187: MEDIA, 188: DEGRADED, 197: MEDIA, 198: MEDIA}
# NVMe critical_warning bits (NVMe base spec, SMART / Health Information log).
NVME_WARNINGS = {
    0: (DEGRADED, "available spare below threshold"),
    1: (DEGRADED, "temperature out of range"),
    2: (FAILING, "reliability degraded"),
    3: (FAILING, "media placed in read-only mode"),
    4: (FAILING, "volatile memory backup failed"),
    5: (FAILING, "persistent memory region read-only"),
}
SEVERITY = {FAILING: Severity.CRITICAL, MEDIA: Severity.CRITICAL, DEGRADED: Severity.WARNING}
TEXT = {
    FAILING: "SMART says the drive is failing",
    MEDIA: "SMART counts unreadable data",
    DEGRADED: "SMART shows wear",
}
# smartctl exit status bits 0 and 1: bad command line, or the device could not be opened.
_UNREADABLE = 0b11


@dataclass
class _Disk:
    device: str
    protocol: str
    model: str
    serial: str
    firmware: str
    found: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, signature: str, problem: dict[str, Any]) -> None:
        self.found.setdefault(signature, []).append(problem)


def parse_smart(payload: Any, *, host: str, now: datetime) -> list[Signal]:
    """The signals in one `smartctl -j -a` document (JSON text or parsed), or a list of them."""
    documents = _documents(payload)
    return [signal for doc in documents for signal in _signals(doc, host=host, now=now)]


def _documents(payload: Any) -> list[Mapping[str, Any]]:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise SignalError(
                f"smartctl output is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg});"
                " run `smartctl -j -a /dev/X`"
            ) from None
    docs = payload if isinstance(payload, list) else [payload]
    if not docs:
        raise SignalError("no smartctl document given")
    for i, doc in enumerate(docs):
        where = f"document {i + 1}: " if len(docs) > 1 else ""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("smartctl"), Mapping):
            raise SignalError(
                f"{where}not `smartctl -j` output: expected a JSON object with a `smartctl` section"
            )
    return docs


def _signals(doc: Mapping[str, Any], *, host: str, now: datetime) -> list[Signal]:
    disk = _disk(doc)
    _check_readable(doc, disk)
    _overall(doc, disk)
    _ata(doc, disk)
    _nvme(doc, disk)
    _scsi(doc, disk)
    observed = _observed_at(doc, now)
    return [
        Signal(
            host=host,
            source=SOURCE,
            signature=signature,
            severity=SEVERITY[signature],
            title=f"{host}: {TEXT[signature]} on {disk.device} ({_describe(problems)})",
            details={
                "device": disk.device,
                "protocol": disk.protocol,
                "model": disk.model,
                "serial": disk.serial,
                "firmware": disk.firmware,
                "problems": problems,
            },
            observed_at=observed,
            component=disk.serial or disk.device,
        )
        for signature, problems in disk.found.items()
    ]


def _disk(doc: Mapping[str, Any]) -> _Disk:
    found = doc.get("device")
    device: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    argv = doc["smartctl"].get("argv")
    last = argv[-1] if isinstance(argv, list) and argv else "?"
    name = device.get("name") or last
    model = doc.get("model_name") or doc.get("scsi_model_name") or doc.get("product") or ""
    return _Disk(
        device=str(name),
        protocol=str(device.get("protocol", "")),
        model=str(model),
        serial=str(doc.get("serial_number", "")),
        firmware=str(doc.get("firmware_version", "")),
    )


def _check_readable(doc: Mapping[str, Any], disk: _Disk) -> None:
    """Refuse a document that holds no SMART reading: the disk was not checked at all."""
    meta = doc["smartctl"]
    status = meta.get("exit_status", 0)
    listed = meta.get("messages")
    messages = "; ".join(
        str(m.get("string", ""))
        for m in (listed if isinstance(listed, list) else [])
        if isinstance(m, Mapping)
    )
    has_data = any(
        key in doc
        for key in ("smart_status", "ata_smart_attributes", "nvme_smart_health_information_log")
    )
    if (isinstance(status, int) and status & _UNREADABLE) or not has_data:
        raise SignalError(
            f"smartctl could not read {disk.device}: {messages or 'no SMART data in its output'}"
            f" (exit status {status})"
        )


def _overall(doc: Mapping[str, Any], disk: _Disk) -> None:
    if _section(doc, "smart_status", disk).get("passed") is False:
        disk.add(
            FAILING, {"name": "smart_status", "meaning": "overall health self-assessment FAILED"}
        )


def _section(doc: Mapping[str, Any], key: str, disk: _Disk) -> Mapping[str, Any]:
    """`doc[key]` if it is an object, {} if absent; a clear error if it is something else."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SignalError(f"{disk.device}: `{key}` must be an object, got {type(value).__name__}")
    return value


def _ata(doc: Mapping[str, Any], disk: _Disk) -> None:
    table = _section(doc, "ata_smart_attributes", disk).get("table") or []
    if not isinstance(table, list):
        raise SignalError(f"{disk.device}: `ata_smart_attributes.table` must be a list")
    for i, attr in enumerate(table):
        if not isinstance(attr, Mapping) or not isinstance(attr.get("id"), int):
            raise SignalError(f"{disk.device}: ata_smart_attributes.table[{i}] has no numeric id")
        found = attr.get("raw")
        raw: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        value = raw.get("value", 0)
        problem = {
            "id": attr["id"],
            "name": attr.get("name", ""),
            "raw": value,
            "raw_string": raw.get("string", str(value)),
            "value": attr.get("value"),
            "threshold": attr.get("thresh"),
        }
        if attr.get("when_failed") == "now":
            disk.add(FAILING, {**problem, "when_failed": "now"})
        signature = ATA_ATTRIBUTES.get(attr["id"])
        if signature is not None and isinstance(value, int) and value > 0:
            disk.add(signature, problem)


def _nvme(doc: Mapping[str, Any], disk: _Disk) -> None:
    log = _section(doc, "nvme_smart_health_information_log", disk)
    warning = log.get("critical_warning", 0)
    if isinstance(warning, int) and warning:
        for bit, (signature, text) in NVME_WARNINGS.items():
            if warning & (1 << bit):
                disk.add(signature, {"name": "critical_warning", "bit": bit, "meaning": text})
    media = log.get("media_errors", 0)
    if isinstance(media, int) and media > 0:
        disk.add(MEDIA, {"name": "media_errors", "raw": media})
    used = log.get("percentage_used", 0)
    if isinstance(used, int) and used >= 100:
        disk.add(DEGRADED, {"name": "percentage_used", "raw": used})


def _scsi(doc: Mapping[str, Any], disk: _Disk) -> None:
    grown = doc.get("scsi_grown_defect_list", 0)
    if isinstance(grown, int) and grown > 0:
        disk.add(DEGRADED, {"name": "grown_defect_list", "raw": grown})
    counters = _section(doc, "scsi_error_counter_log", disk)
    for op in ("read", "write", "verify"):
        entry = counters.get(op)
        uncorrected = entry.get("total_uncorrected_errors", 0) if isinstance(entry, Mapping) else 0
        if isinstance(uncorrected, int) and uncorrected > 0:
            disk.add(MEDIA, {"name": f"{op}_total_uncorrected_errors", "raw": uncorrected})


def _observed_at(doc: Mapping[str, Any], now: datetime) -> datetime:
    """The reading's own time (smartctl's `local_time`), else `now`."""
    local = doc.get("local_time")
    stamp = local.get("time_t") if isinstance(local, Mapping) else None
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        return now
    try:
        return datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise SignalError(f"local_time.time_t {stamp} is not a time") from None


def _describe(problems: list[dict[str, Any]]) -> str:
    parts = []
    for p in problems[:4]:
        if "raw" in p:
            parts.append(f"{p['name']}={p.get('raw_string', p['raw'])}")
        else:
            parts.append(str(p.get("meaning") or p.get("name")))
    more = f", +{len(problems) - 4} more" if len(problems) > 4 else ""
    return ", ".join(parts) + more
