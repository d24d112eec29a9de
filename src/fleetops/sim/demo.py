"""Build the demo database: the generated fleet and one user per role."""

from __future__ import annotations

from fleetops.audit.service import AuditContext
from fleetops.auth import service as auth_service
from fleetops.auth.roles import Role
from fleetops.config import Settings
from fleetops.db import make_engine, make_session_factory, session_scope, upgrade
from fleetops.inventory.apply import apply_document
from fleetops.sim.fleet import generate

DEMO_PASSWORDS = {role: f"{role.value}-demo-pass" for role in Role}


def build_demo(settings: Settings, *, hosts: int, racks: int) -> dict[str, str]:
    """Create and fill the demo database; return username → password."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    ctx = AuditContext(actor="system:demo")
    with session_scope(make_session_factory(engine)) as session:
        for role, password in DEMO_PASSWORDS.items():
            auth_service.create_user(
                session, ctx, username=role.value, role=role, password=password
            )
        apply_document(session, ctx, generate(hosts=hosts, racks=racks))
    engine.dispose()
    return {role.value: pw for role, pw in DEMO_PASSWORDS.items()}
