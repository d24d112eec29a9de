"""Memory errors from the kernel's EDAC counters (`/sys/devices/system/edac/mc/mc*/`).

The counters are cumulative since the driver loaded (or `reset_counters`), so a reading is compared
with the previous one of the same host: an increase of `ce_count` is `edac_ce` (warning), of
`ue_count` `edac_ue` (critical), with the DIMMs (or csrows on older drivers) whose counters rose.
A counter lower than before was reset (reboot, driver reload): its whole value is new. Without a
previous reading every non-zero counter is new: errors since boot are news the first time they
are seen.

A reading is the JSON-able mapping `read_edac` returns, so it can cross the API:
`{"controllers": {"mc0": {"name": ..., "ce_count": 3, "ue_count": 0, "dimms": {"dimm0": {"label":
..., "ce_count": 3, "ue_count": 0}}, "csrows": {...}}}}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fleetops.devices.signals.exceptions import SignalError, SourceUnavailable
from fleetops.devices.signals.service import Signal
from fleetops.findings.enums import Severity

SOURCE = "edac"
EDAC_MC = Path("devices/system/edac/mc")
KINDS = {
    "ce": ("edac_ce", Severity.WARNING, "corrected memory error(s)"),
    "ue": ("edac_ue", Severity.CRITICAL, "uncorrectable memory error(s)"),
}


def _natural(path: Path) -> tuple[str, int]:
    match = re.match(r"(\D+)(\d+)$", path.name)
    return (match[1], int(match[2])) if match else (path.name, -1)


# --- read -------------------------------------------------------------------------------------


def read_edac(sysfs: Path = Path("/sys")) -> dict[str, Any]:
    """Read every memory controller's counters under a sysfs root (`/sys`, or a copy of it)."""
    base = sysfs / EDAC_MC
    controllers = {mc.name: _controller(mc) for mc in sorted(base.glob("mc[0-9]*"), key=_natural)}
    if not controllers:
        raise SourceUnavailable(
            f"no EDAC memory controllers under {base}: is an EDAC driver loaded for this "
            "platform (see `edac-util --status`)?"
        )
    return {"controllers": controllers}


def _controller(mc: Path) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": _text(mc / "mc_name", default=""),
        "ce_count": _number(mc / "ce_count"),
        "ue_count": _number(mc / "ue_count"),
        "dimms": {},
        "csrows": {},
    }
    for dimm in sorted([*mc.glob("dimm[0-9]*"), *mc.glob("rank[0-9]*")], key=_natural):
        found["dimms"][dimm.name] = {
            "label": _text(dimm / "dimm_label", default=""),
            "ce_count": _number(dimm / "dimm_ce_count"),
            "ue_count": _number(dimm / "dimm_ue_count"),
        }
    for row in sorted(mc.glob("csrow[0-9]*"), key=_natural):
        labels = [_text(p, default="") for p in sorted(row.glob("ch*_dimm_label"), key=_natural)]
        found["csrows"][row.name] = {
            "label": ", ".join(label for label in labels if label),
            "ce_count": _number(row / "ce_count"),
            "ue_count": _number(row / "ue_count"),
        }
    return found


def _text(path: Path, *, default: str | None = None) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        if default is not None:
            return default
        raise SignalError(f"{path} is missing: not an EDAC sysfs tree") from None
    except OSError as exc:
        raise SignalError(f"cannot read {path}: {exc.strerror}") from None


def _number(path: Path) -> int:
    text = _text(path)
    if not text.isdigit():
        raise SignalError(f"{path} should hold a counter, found {text[:40]!r}")
    return int(text)


# --- parse ------------------------------------------------------------------------------------


def parse_edac(payload: Any, *, host: str, now: datetime, previous: Any = None) -> list[Signal]:
    """The counter increases since `previous` (a reading of the same host) as signals."""
    current = _reading(payload, "reading")
    before = _reading(previous, "previous reading") if previous is not None else {}
    signals = []
    for name, mc in current.items():
        old = before.get(name, {})
        for kind, (signature, severity, text) in KINDS.items():
            count = _delta(mc, old, kind)
            if count <= 0:
                continue
            where = _locations(mc, old, kind)
            labels = ", ".join(w["label"] or w["location"] for w in where)
            signals.append(
                Signal(
                    host=host,
                    source=SOURCE,
                    signature=signature,
                    severity=severity,
                    title=f"{host}: {count} {text} on {name}" + (f" ({labels})" if labels else ""),
                    details={
                        "controller": name,
                        "mc_name": mc.get("name", ""),
                        "count": count,
                        "total": mc[f"{kind}_count"],
                        "locations": where,
                    },
                    observed_at=now,
                    component=name,
                )
            )
    return signals


def _delta(now: Mapping[str, Any], before: Mapping[str, Any], kind: str) -> int:
    """The increase of a cumulative counter; a counter that went down was reset."""
    value: int = now[f"{kind}_count"]
    old: int = before.get(f"{kind}_count", 0)
    return value - old if value >= old else value


def _locations(mc: Mapping[str, Any], old: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """The DIMMs (else csrows) whose counter rose, with their labels."""
    for group in ("dimms", "csrows"):
        rows = mc.get(group) or {}
        before = old.get(group) or {}
        rose = [
            {"location": name, "label": row.get("label", ""), "count": n}
            for name, row in rows.items()
            if (n := _delta(row, before.get(name, {}), kind)) > 0
        ]
        if rose:
            return rose
    return []


def _reading(payload: Any, what: str) -> dict[str, dict[str, Any]]:
    """The controllers of a reading, checked: counters are whole numbers of at least 0."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise SignalError(f"EDAC {what} is not JSON ({exc.msg} at line {exc.lineno})") from None
    controllers = payload.get("controllers") if isinstance(payload, Mapping) else None
    if not isinstance(controllers, Mapping) or not controllers:
        raise SignalError(
            f"EDAC {what} must be an object with a non-empty `controllers` mapping "
            "(what `read_edac` or `fleetops device signals ingest --source edac /sys` sends)"
        )
    for name, mc in controllers.items():
        _check_counters(mc, f"{what}: controllers.{name}")
        for group in ("dimms", "csrows"):
            rows = mc.get(group, {})
            if not isinstance(rows, Mapping):
                raise SignalError(f"EDAC {what}: controllers.{name}.{group} must be an object")
            for row_name, row in rows.items():
                _check_counters(row, f"{what}: controllers.{name}.{group}.{row_name}")
    return {str(k): dict(v) for k, v in controllers.items()}


def _check_counters(entry: Any, where: str) -> None:
    if not isinstance(entry, Mapping):
        raise SignalError(f"EDAC {where} must be an object")
    for key in ("ce_count", "ue_count"):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SignalError(
                f"EDAC {where}.{key} must be a whole number of at least 0, got {value!r}"
            )
    for key in ("name", "label"):
        if not isinstance(entry.get(key, ""), str):
            raise SignalError(f"EDAC {where}.{key} must be a string")
