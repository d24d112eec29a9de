"""Every list, in the API and on its page, costs the same number of queries for two rows as for
twenty: no list reads something per row (N+1). The change list has its own test beside the
changes domain; this one covers findings, devices, repair tickets and inspection results."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.devices.enums import Lifecycle
from fleetops.devices.states import transition
from fleetops.findings import service as findings
from fleetops.findings.schemas import Observation
from fleetops.inventory.apply import apply_document
from fleetops.main import create_app
from fleetops.models import Host, ProbeRun, RepairTicket, utcnow
from fleetops.sim.fleet import generate
from tests.fixtures.app import Tokens, make_settings, seed_users
from tests.fixtures.queries import counted

HOSTS = 24
# (API list, page) per domain; each row seeded below shows in both.
LISTS = {
    "findings": ("/api/v1/findings", "/findings"),
    "devices": ("/api/v1/devices?state=suspect", "/devices?state=suspect"),
    "repairs": ("/api/v1/repairs", "/repairs"),
    "inspections": ("/api/v1/inspections", "/inspection"),
}


@pytest.fixture
def listed(db_url: str, tmp_path: Path) -> Iterator[tuple[FastAPI, TestClient, Tokens]]:
    settings = make_settings(db_url, tmp_path / "data", engine_enabled=False, ingest_enabled=False)
    app = create_app(settings)
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        apply_document(session, AuditContext(actor="test"), generate(hosts=HOSTS, racks=4))
    engine.dispose()
    with TestClient(app) as client:
        yield app, client, seed_users(db_url)


def seed(db_url: str, first: int, last: int) -> None:
    """Hosts first..last-1 (in name order): a finding each, moved to suspect on it, a repair
    ticket and a disk probe result."""
    engine = make_engine(db_url)
    ctx = AuditContext(actor="operator")
    now = utcnow()
    with session_scope(make_session_factory(engine)) as session:
        hosts = session.scalars(select(Host).order_by(Host.hostname)).all()[first:last]
        for host in hosts:
            finding, _ = findings.report(
                session,
                Observation(
                    kind="hardware_error",
                    detector="test",
                    entity_type="host",
                    entity=host.hostname,
                    severity="warning",
                    score=1.0,
                    title=f"disk errors on {host.hostname}",
                    evidence=[],
                    details={},
                    onset_at=now,
                ),
                now=now,
            )
            transition(
                session, host, Lifecycle.SUSPECT, ctx=ctx, reason="test", evidence=[finding.id]
            )
            session.add(
                RepairTicket(
                    host_id=host.id,
                    status="open",
                    action="reboot",
                    evidence=[finding.id],
                    sla_due=now + timedelta(hours=8),
                )
            )
            session.add(
                ProbeRun(
                    host_id=host.id,
                    hostname=host.hostname,
                    probe="disk",
                    status="pass",
                    host_state="in_service",
                )
            )
    engine.dispose()


@pytest.mark.parametrize("domain", sorted(LISTS))
def test_a_list_costs_the_same_for_two_rows_as_for_twenty(
    listed: tuple[FastAPI, TestClient, Tokens], db_url: str, domain: str
) -> None:
    app, client, users = listed
    viewer = users.headers("viewer")
    client.get("/api/v1/findings", headers=viewer)  # the token's first use writes its last-used
    costs: dict[str, list[int]] = {path: [] for path in LISTS[domain]}
    for first, last in ((0, 2), (2, 20)):
        seed(db_url, first, last)
        for path in LISTS[domain]:
            with counted(app) as statements:
                answer = client.get(path, headers=viewer)
            assert answer.status_code == 200, answer.text
            if path.startswith("/api/"):
                assert answer.json()["total"] == last, answer.json()
            costs[path].append(len(statements))
    for path, (few, many) in costs.items():
        assert many == few, f"{path}: {few} queries for 2 rows, {many} for 20"
