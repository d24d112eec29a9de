"""The demo's disk predictions: the real predictor over the shared Backblaze days, its drives
placed in the simulated fleet.

The simulated hosts have no SMART history of their own, so the demo deals the shared data's
drives out to its hosts (each drive to one host, by a hash of its serial: a storage-dense fleet
holds dozens of drives a host) and reports the drives the predictor flags, as of one day of that
data, as each host's predictions: through the same signals path `fleetops predict disks
--report` uses, into `disk_failure_predicted` findings that the remediation rules act on.
"""

from __future__ import annotations

import logging
import zlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fleetops.analytics.predict.service import rank
from fleetops.config import Settings
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.devices.enums import Source
from fleetops.devices.signals.ingest import parse_payload
from fleetops.devices.signals.service import report_signals
from fleetops.models import Host, utcnow

log = logging.getLogger(__name__)
SHARED_SMART = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "smart"
AS_OF = date(2013, 4, 25)  # ten days before the data ends: some flagged drives fail after it
HORIZON = 14


def place(serial: str, hosts: list[str]) -> str:
    """The host a drive is in: the same one on every run."""
    return hosts[zlib.crc32(serial.encode()) % len(hosts)]


def predictions_by_host(
    hosts: list[str], *, history: Path = SHARED_SMART, as_of: date = AS_OF
) -> dict[str, list[dict[str, Any]]]:
    """Each host's flagged drives, as `fleetops predict disks -o json` rows."""
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rank(history, as_of=as_of, horizon=HORIZON):
        if row["predicted_failure"]:
            row = {**row, "horizon_days": HORIZON, "as_of": as_of.isoformat()}
            found.setdefault(place(row["serial_number"], hosts), []).append(row)
    return found


def report_predictions(settings: Settings, *, now: datetime | None = None) -> int:
    """Predict and report for the demo's fleet; how many findings (0 without the shared data)."""
    if not SHARED_SMART.is_dir():
        log.info("no shared SMART data at %s: the demo makes no disk predictions", SHARED_SMART)
        return 0
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            hosts = sorted(session.scalars(select(Host.hostname)))
        if not hosts:
            return 0
        flagged = predictions_by_host(hosts)
        at = now or utcnow()
        reported = 0
        with session_scope(make_session_factory(engine)) as session:
            for host, rows in sorted(flagged.items()):
                signals = parse_payload(Source.DISK_PREDICTION, rows, host=host, now=at)
                reported += len(report_signals(session, signals, now=at))
        return reported
    finally:
        engine.dispose()
