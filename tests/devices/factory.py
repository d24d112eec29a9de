"""Hosts and findings for device tests, committed the way an import and a detector commit them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
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
