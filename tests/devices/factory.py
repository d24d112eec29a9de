"""Hosts and findings for device tests, committed the way an import and a detector commit them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.findings import service as findings
from fleetops.findings.schemas import Observation
from fleetops.inventory import service as inventory
from fleetops.inventory.schemas import HostCreate
from tests.findings.factory import report

SETUP = AuditContext(actor="test")


def add_hosts(session: Session, *names: str) -> None:
    for name in names:
        inventory.create_host(session, SETUP, HostCreate(hostname=name))
    session.flush()


def seed(db_url: str, *hosts: str, findings: int = 0) -> list[int]:
    """Commit `hosts` and `findings` disk findings (on distinct hosts); the finding ids."""
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        add_hosts(session, *hosts)
        ids = [report(session, entity=f"f{i:03}")[0].id for i in range(findings)]
    engine.dispose()
    return ids


def hardware_findings(
    db_url: str,
    *hosts: str,
    signature: str = "disk_io",
    later: timedelta = timedelta(0),
) -> list[int]:
    """Commit one `hardware_error` finding per host, as the error-signature detector reports
    them, seen now (or `later`); their ids."""
    engine = make_engine(db_url)
    now = datetime.now(UTC) + later
    with session_scope(make_session_factory(engine)) as session:
        ids = []
        for host in hosts:
            finding, _ = findings.report(
                session,
                Observation(
                    kind="hardware_error",
                    detector="error-signatures",
                    entity_type="host",
                    entity=host,
                    severity="critical",
                    score=3.0,
                    title=f"{host}: 3 {signature} errors in 5 min",
                    evidence=[],
                    details={"signature": signature, "count": 3},
                    onset_at=now,
                ),
                now=now,
            )
            ids.append(finding.id)
    engine.dispose()
    return ids
