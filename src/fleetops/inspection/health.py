"""Verdicts on health readings that are judged by thresholds, not by a model's baseline.

A SMART counter is not a throughput that varies around a healthy median: a healthy drive of any
model reports zero reallocated, pending or uncorrectable sectors and zero media errors, and one
such sector is already data the drive lost or nearly lost. A baseline built from a fleet would
also absorb the drives that are quietly failing in it, so the threshold is fixed: above zero fails.
"""

from __future__ import annotations

from fleetops.devices.signals.smart import NVME_WARNINGS
from fleetops.inspection.baselines import Verdict
from fleetops.inspection.enums import Outcome, Probe
from fleetops.inspection.probes import SMART_HEALTH, ProbeResult

# Points whose count must be zero: sectors or data the drive could not keep.
LOST_DATA = (
    "reallocated sectors",
    "pending sectors",
    "offline uncorrectable",
    "reported uncorrectable",
    "media errors",
)
# Counted and shown, but no proof against the drive: a cable or a controller can cause them.
NOTED = ("UDMA CRC errors", "command timeouts")


def smart_verdict(result: ProbeResult) -> Verdict:
    """Fail a drive whose health self-assessment failed or that counts lost data; name each."""
    if result.probe != Probe.SMART:
        raise ValueError(f"a {result.probe} result is not a SMART reading")
    points = result.points
    reasons: list[str] = []
    if points.get(SMART_HEALTH) == 0:
        reasons.append("the drive's overall health self-assessment failed")
    reasons += [f"{name}: {points[name]:g}" for name in LOST_DATA if points.get(name, 0) > 0]
    warning = int(points.get("critical warning", 0))
    if warning:
        reasons.append(f"critical warning {warning}: {_warning_bits(warning)}")
    if reasons:
        return Verdict(status=Outcome.FAIL, ratios={}, reasons=reasons)
    if SMART_HEALTH not in points and not any(name in points for name in LOST_DATA):
        missing = "the reading has no health verdict and no error counter: nothing to judge"
        return Verdict(status=Outcome.INCONCLUSIVE, ratios={}, reasons=[missing])
    return Verdict(status=Outcome.PASS, ratios={}, reasons=[_healthy(points)])


def _warning_bits(warning: int) -> str:
    meanings = [text for bit, (_, text) in NVME_WARNINGS.items() if warning & (1 << bit)]
    return ", ".join(meanings) or "an unknown bit"


def _healthy(points: dict[str, float]) -> str:
    counted = [name for name in LOST_DATA if name in points]
    note = "health self-assessment passed" if SMART_HEALTH in points else "no health verdict"
    note += f"; {', '.join(counted)} all 0" if counted else "; no error counters read"
    noted = [f"{name}: {points[name]:g}" for name in NOTED if points.get(name, 0) > 0]
    if noted:
        note += f" (also {', '.join(noted)}: check the cable and controller)"
    return note
