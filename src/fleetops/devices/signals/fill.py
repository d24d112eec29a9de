"""Filesystem fill forecasts as signals: a data filesystem that `fleetops forecast usage` says
fills within two weeks.

The payload is what `fleetops forecast usage FILE --capacity X -o json` prints for the
filesystem's usage, with the filesystem's `mount` added. A forecast whose earliest day until full
(the upper band reaching the capacity) is within `WITHIN_DAYS` opens a
`filesystem_fill_predicted` finding (critical within `URGENT_DAYS`), one per mount; the remediation
rules act on it (give back the root reserve of a data disk, through a change). Any other
forecast is news of nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fleetops.devices.signals.exceptions import SignalError
from fleetops.devices.signals.service import Signal
from fleetops.findings.enums import Severity

SOURCE = "fill_forecast"
SIGNATURE = "filesystem_fill_predicted"
WITHIN_DAYS = 14.0
URGENT_DAYS = 2.0
# What the ext4_reserve operation accepts: an absolute path of plain characters.
MOUNT = re.compile(r"^/[A-Za-z0-9._/-]{0,254}$")


def parse_fill(payload: Any, *, host: str, now: datetime) -> list[Signal]:
    """A signal if the forecast fills the mount within WITHIN_DAYS; SignalError names the field
    that cannot be read."""
    doc = _document(payload)
    mount = doc.get("mount")
    if not isinstance(mount, str) or not MOUNT.match(mount) or ".." in mount.split("/"):
        raise SignalError("`mount` must be the filesystem's absolute mount point, e.g. /data1")
    full = doc.get("days_until_full")
    if not isinstance(full, Mapping):
        raise SignalError(
            "no `days_until_full`: run `fleetops forecast usage FILE --capacity X -o json`"
        )
    earliest, median = (_days(full, key) for key in ("earliest", "median"))
    if earliest is None or earliest > WITHIN_DAYS:
        return []
    severity = Severity.CRITICAL if earliest <= URGENT_DAYS else Severity.WARNING
    when = f"in {median:.1f} days" if median is not None else "beyond the forecast"
    return [
        Signal(
            host=host,
            source=SOURCE,
            signature=SIGNATURE,
            severity=severity,
            title=f"{host}: {mount} predicted full {when} (at the earliest in {earliest:.1f})",
            details={
                "mount": mount,
                "capacity": full.get("capacity"),
                "earliest_days": earliest,
                "median_days": median,
                "last": doc.get("last"),
            },
            observed_at=now,
            component=mount,
        )
    ]


def _document(payload: Any) -> Mapping[str, Any]:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise SignalError(
                f"the forecast is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                "send what `fleetops forecast usage ... -o json` prints, with `mount`"
            ) from None
    if not isinstance(payload, Mapping):
        raise SignalError("the forecast must be a JSON object (`fleetops forecast usage -o json`)")
    return payload


def _days(full: Mapping[str, Any], key: str) -> float | None:
    value = full.get(key)
    if value is None:
        return None  # not within the forecast's horizon
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SignalError(f"`days_until_full.{key}` must be a number of days or null")
    if value < 0:
        raise SignalError(f"`days_until_full.{key}` must not be negative")
    return float(value)
