"""The demo's storage reports: the simulated namespace holds every kind of waste the analysis
looks for, and the small shared fsimages are analysed beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.models import StorageReport
from fleetops.sim.demo import SHARED_FSIMAGES, SMALL_IMAGE, storage_reports
from fleetops.sim.namespace import namespace


def test_the_simulated_namespace_is_the_same_on_every_machine() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    first, again = list(namespace(now)), list(namespace(now))
    assert first == again
    assert sum(e.kind == "file" for e in first) > 20_000


def test_the_demo_keeps_a_report_with_every_kind_of_finding(
    session: Session, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    kept = storage_reports(session, AuditContext(actor="system:demo"), work)
    rows = session.scalars(select(StorageReport).order_by(StorageReport.id)).all()
    assert [r.id for r in rows] == kept
    simulated = rows[0]
    kinds = {f["kind"] for f in simulated.report["findings"]}
    assert kinds == {
        "trash_retention",
        "layered_trash",
        "small_files",
        "cold_data",
        "over_replication",
    }
    assert simulated.disk_savings > 0
    small = [i.name for i in SHARED_FSIMAGES.glob("fs*") if i.stat().st_size < SMALL_IMAGE]
    assert sorted(r.source for r in rows[1:]) == sorted(small)  # none when the data is absent
    assert list(work.iterdir()) == []  # its entries files are gone
