"""Disk failure predictions as signals: the drives `fleetops predict disks` flags on a host.

A prediction is not a failure: it opens a `disk_failure_predicted` finding (warning) that the
health policy leaves alone and the remediation rules act on (drain the host and replace the
drive before it fails). The payload is the rows `fleetops predict disks -o json` prints for the
host's drives, each `{"serial_number", "model", "score", "predicted_failure"}` and optionally
`horizon_days` and `as_of`; only rows with `predicted_failure: true` become signals, one finding
per drive (its serial).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fleetops.devices.signals.exceptions import SignalError
from fleetops.devices.signals.service import Signal
from fleetops.findings.enums import Severity

SOURCE = "disk_prediction"
SIGNATURE = "disk_failure_predicted"
MAX_ROWS = 10_000


def parse_predictions(payload: Any, *, host: str, now: datetime) -> list[Signal]:
    """One signal per drive predicted to fail; SignalError names the row that cannot be read."""
    rows = _rows(payload)
    signals: list[Signal] = []
    for n, row in enumerate(rows, 1):
        serial, model, score, flagged = _fields(row, n)
        if not flagged:
            continue
        horizon = row.get("horizon_days")
        within = f" within {horizon} days" if isinstance(horizon, int) else ""
        signals.append(
            Signal(
                host=host,
                source=SOURCE,
                signature=SIGNATURE,
                severity=Severity.WARNING,
                title=f"{host}: drive {serial} ({model}) predicted to fail{within} "
                f"(score {score:.3f})",
                details={
                    "serial": serial,
                    "model": model,
                    "score": score,
                    "horizon_days": horizon if isinstance(horizon, int) else None,
                    "as_of": str(row.get("as_of", "")),
                },
                observed_at=now,
                component=serial,
            )
        )
    return signals


def _rows(payload: Any) -> list[Any]:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise SignalError(
                f"predictions are not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                "send what `fleetops predict disks -o json` prints"
            ) from None
    if isinstance(payload, Mapping):
        payload = [payload]
    if not isinstance(payload, list):
        raise SignalError("predictions must be a JSON list of `fleetops predict disks` rows")
    if len(payload) > MAX_ROWS:
        raise SignalError(f"{len(payload)} predictions for one host: at most {MAX_ROWS}")
    return payload


def _fields(row: Any, n: int) -> tuple[str, str, float, bool]:
    where = f"prediction {n}"
    if not isinstance(row, Mapping):
        raise SignalError(f"{where}: expected an object, got {type(row).__name__}")
    serial, model, score, flagged = (
        row.get(k) for k in ("serial_number", "model", "score", "predicted_failure")
    )
    if not isinstance(serial, str) or not serial.strip() or len(serial) > 64:
        raise SignalError(f"{where}: `serial_number` must be a non-empty string (at most 64)")
    if not isinstance(model, str) or len(model) > 128:
        raise SignalError(f"{where}: `model` must be a string (at most 128 characters)")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise SignalError(f"{where}: `score` must be a number")
    if not isinstance(flagged, bool):
        raise SignalError(f"{where}: `predicted_failure` must be true or false")
    return serial.strip(), model, float(score), flagged
