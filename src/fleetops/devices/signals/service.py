"""Hardware health signals from tools other than the logs, reported as host findings.

Each adapter (smart, edac, ipmi, node_exporter) turns one tool's real output into `Signal`
records; `report_signals` files them as `hardware_error` findings whose `details.signature` the
health policy matches, exactly as it matches the log detectors' findings. One finding per
(signature, host, source, component): a disk or a memory controller keeps its own finding, and a
signal seen again bumps it. Sources keep separate findings from the log detectors so that one event
seen both in the kernel log and in a counter is not counted twice by a rule's `count`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.devices.exceptions import DeviceNotFound
from fleetops.findings import service as findings
from fleetops.findings.enums import Severity
from fleetops.findings.schemas import Observation
from fleetops.models import Finding, Host

KIND = "hardware_error"
_KEY_MAX = 255  # the findings table's dedup_key length


@dataclass(frozen=True)
class Signal:
    """One problem a tool reported on a host.

    `component` names the part it concerns (a disk's serial, `mc0`, `eth1`, a BMC sensor) so each
    part keeps its own finding; `details["count"]`, when given, is how many events the signal
    stands for (a counter's increase) and becomes the finding's score.
    """

    host: str
    source: str
    signature: str
    severity: Severity
    title: str
    details: Mapping[str, Any]
    observed_at: datetime
    component: str = ""

    @property
    def detector(self) -> str:
        """The findings' detector name: the source, as detectors are named (`ipmi-sel`)."""
        return self.source.replace("_", "-")

    @property
    def dedup_key(self) -> str:
        """`hardware_error:<signature>:host:<host>:<source>[:<component>]`, hashed where a long
        component (or host) would not fit the column."""
        key = f"{KIND}:{self.signature}:host:{self.host}:{self.source}"
        full = f"{key}:{self.component}" if self.component else key
        if len(full) <= _KEY_MAX:
            return full
        digest = hashlib.sha256(full.encode()).hexdigest()
        if len(key) + 17 <= _KEY_MAX:
            return f"{key}:{digest[:16]}"
        return f"{KIND}:{self.signature}:{digest}"


def report_signals(
    session: Session,
    signals: Sequence[Signal],
    *,
    now: datetime,
    ctx: AuditContext | None = None,
) -> list[Finding]:
    """File each signal as a host finding (opened or bumped); the findings, each once, in order.

    Every host must exist: an unknown one is refused before anything is stored.
    """
    hosts = {s.host for s in signals}
    known = set(session.scalars(select(Host.hostname).where(Host.hostname.in_(hosts))))
    unknown = sorted(hosts - known)
    if unknown:
        raise DeviceNotFound(f"host {', '.join(map(repr, unknown))} not found")
    reported: dict[int, Finding] = {}
    for signal in signals:
        finding, _ = findings.report(
            session,
            Observation(
                kind=KIND,
                detector=signal.detector,
                entity_type="host",
                entity=signal.host,
                severity=signal.severity.value,
                score=float(signal.details.get("count", 1)),
                title=signal.title,
                evidence=[_evidence(signal)],
                details={
                    **signal.details,
                    "signature": signal.signature,
                    "source": signal.source,
                    "component": signal.component,
                },
                onset_at=signal.observed_at,
                dedup_key=signal.dedup_key,
            ),
            now=now,
            ctx=ctx,
        )
        reported.setdefault(finding.id, finding)
    return list(reported.values())


def _evidence(signal: Signal) -> dict[str, Any]:
    ref: dict[str, Any] = {
        "type": "signal",
        "source": signal.source,
        "observed_at": signal.observed_at.isoformat(),
    }
    if signal.component:
        ref["component"] = signal.component
    return ref
