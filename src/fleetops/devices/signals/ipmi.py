"""Hardware events from the BMC's System Event Log: `ipmitool sel elist` (or `sel list`) text.

Each line is one event, `id | date | time | sensor | event | direction [| reading]`, e.g.

    2 | 04/01/26 | 10:00:01 UTC | Memory #0x53 | Correctable ECC logging limit reached | Asserted

The sensor column starts with the IPMI sensor type (`Memory`, `Drive Slot / Bay`, `Processor`,
`Power Supply`, `Fan`), followed by the sensor's SDR name or `#0x<number>`. Only asserted events
that mean failing hardware become signals; deassertions, presence, boot and log housekeeping
events are ignored. The SEL keeps history, so events already in the previous dump of the same host
are skipped: ingesting the same SEL twice reports nothing new.

Times are read as UTC: ipmitool prints them in the local zone of the machine that ran it, so run
`ipmitool -Z sel elist` (UTC) where that zone is not UTC; another zone name is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from fleetops.devices.signals.exceptions import SignalError
from fleetops.devices.signals.service import Signal
from fleetops.findings.enums import Severity

SOURCE = "ipmi_sel"
EMPTY = "SEL has no entries"  # what ipmitool prints for an empty log
UTC_NAMES = frozenset({"UTC", "GMT", "UCT", "Z"})
_ID = re.compile(r"^[0-9a-fA-F]+$")
_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{2}|\d{4})$")
_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\s+(\S+))?$")

CRIT, WARN = Severity.CRITICAL, Severity.WARNING
# (sensor type, event text contains) -> (signature, severity); first match wins, so the more
# specific text comes first ("correctable ecc" is also in "uncorrectable ecc").
RULES: tuple[tuple[str, str, str, Severity], ...] = (
    ("Memory", "uncorrectable ecc", "edac_ue", CRIT),
    ("Memory", "parity", "edac_ue", CRIT),
    ("Memory", "memory scrub failed", "edac_ue", CRIT),
    ("Memory", "memory device disabled", "edac_ue", CRIT),
    ("Memory", "correctable ecc", "edac_ce", WARN),  # also "... logging limit reached"
    ("Event Logging Disabled", "correctable memory error logging disabled", "edac_ce", WARN),
    ("Drive Slot", "drive fault", "disk_io", CRIT),
    ("Drive Slot", "in failed array", "disk_io", CRIT),
    ("Drive Slot", "predictive failure", "disk_io", WARN),
    ("Processor", "ierr", "mce", CRIT),
    ("Processor", "uncorrectable machine check", "mce", CRIT),
    ("Processor", "uncorrectable cpu-complex error", "mce", CRIT),
    ("Processor", "correctable machine check", "mce_ce", WARN),
    ("Processor", "thermal trip", "thermal", CRIT),
    ("Power Supply", "failure detected", "psu", CRIT),
    ("Power Supply", "predictive failure", "psu", WARN),
    ("Power Supply", "ac lost", "psu", WARN),
    ("Fan", "non-critical going", "fan", WARN),
    ("Fan", "critical going", "fan", CRIT),
    ("Fan", "non-recoverable going", "fan", CRIT),
    ("Fan", "transition to critical", "fan", CRIT),
    ("Fan", "transition to non-recoverable", "fan", CRIT),
    ("Fan", "predictive failure asserted", "fan", WARN),
    ("Fan", "redundancy lost", "fan", WARN),
)


@dataclass(frozen=True)
class SelEntry:
    """One SEL line; `at` is None for `Pre-Init` entries (stamped before the BMC knew the time)."""

    record: str
    at: datetime | None
    sensor: str
    event: str
    direction: str
    key: tuple[str, ...]  # the line's own fields: the same event in a later dump


def parse_sel(text: str, *, host: str, now: datetime, previous: str | None = None) -> list[Signal]:
    """The failing-hardware events of a SEL dump that are not in `previous`, as signals."""
    if not isinstance(text, str):
        raise SignalError("IPMI SEL payload must be the text output of `ipmitool sel elist`")
    seen = {e.key for e in read_sel(previous)} if previous else set()
    signals = []
    for entry in read_sel(text):
        if entry.key in seen or entry.direction != "Asserted":
            continue
        rule = classify(entry)
        if rule is None:
            continue
        signature, severity = rule
        signals.append(
            Signal(
                host=host,
                source=SOURCE,
                signature=signature,
                severity=severity,
                title=f"{host}: BMC event {entry.sensor}: {entry.event}",
                details={
                    "record": entry.record,
                    "sensor": entry.sensor,
                    "event": entry.event,
                    "event_time": entry.at.isoformat() if entry.at else "pre-init",
                },
                observed_at=entry.at or now,
                component=entry.sensor,
            )
        )
    return signals


def classify(entry: SelEntry) -> tuple[str, Severity] | None:
    """The signature and severity of an event, or None if it is not a hardware failure."""
    event = entry.event.lower()
    for sensor_type, text, signature, severity in RULES:
        if entry.sensor.startswith(sensor_type) and text in event:
            return signature, severity
    return None


def read_sel(text: str) -> list[SelEntry]:
    """Every entry of a `sel elist`/`sel list` dump; a line of another shape is an error."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line == EMPTY:
            continue
        entries.append(_entry(number, line))
    return entries


def _entry(number: int, line: str) -> SelEntry:
    fields = [f.strip() for f in line.split("|")]
    key = tuple(fields)
    if len(fields) >= 2 and fields[1].startswith(
        "OEM record"
    ):  # no timestamp: "4 | OEM record e0 | …"
        return SelEntry(fields[0], None, fields[1], " | ".join(fields[2:]), "", key)
    if fields[1:2] == ["Pre-Init"]:  # "  1 |  Pre-Init  |0000000042| System Event #0x01 | ..."
        fields = [fields[0], "", "", *fields[3:]]
    if len(fields) < 5 or not _ID.match(fields[0]):
        raise SignalError(
            f"SEL line {number} is not `ipmitool sel elist` output "
            f"(id | date | time | sensor | event | direction): {line[:200]!r}"
        )
    record, date, clock, sensor, event = fields[:5]
    at = _when(number, date, clock) if date else None
    return SelEntry(
        record=record,
        at=at,
        sensor=sensor,
        event=event,
        direction=fields[5] if len(fields) > 5 else "",
        key=key,
    )


def _when(number: int, date: str, clock: str) -> datetime:
    day, time = _DATE.match(date), _TIME.match(clock)
    if day is None or time is None:
        raise SignalError(
            f"SEL line {number}: cannot read the time {date} {clock!r} "
            "(expected MM/DD/YY or MM/DD/YYYY and HH:MM:SS)"
        )
    zone = time[4]
    if zone is not None and zone not in UTC_NAMES:
        raise SignalError(
            f"SEL line {number}: time zone {zone} cannot be read as UTC; "
            "run `ipmitool -Z sel elist` to print UTC times"
        )
    month, dom, year = int(day[1]), int(day[2]), int(day[3])
    if len(day[3]) == 2:  # strftime's %x: two digits, 69-99 in the 1900s (as %y reads them)
        year += 2000 if year < 69 else 1900
    try:
        return datetime(year, month, dom, int(time[1]), int(time[2]), int(time[3]), tzinfo=UTC)
    except ValueError as exc:
        raise SignalError(f"SEL line {number}: {exc} in {date} {clock}") from None
