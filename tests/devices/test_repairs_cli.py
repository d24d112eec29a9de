"""`fleetops repair ...` as a user runs it: a ticket from the queue to `repaired`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.devices.enums import Lifecycle
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import RepairConfig
from fleetops.devices.states import transition
from fleetops.models import Host
from tests.devices.factory import seed
from tests.fixtures.server import cli_env, cli_ok, run_cli

L = Lifecycle
POLICY = AuditContext(actor="policy:test")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, "repair", *args)


def ok(env: dict[str, str], *args: str) -> str:
    return cli_ok(env, "repair", *args)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(db_url, tmp_path / "data", FLEETOPS_ENGINE_ENABLED="false")


def isolated_with_ticket(db_url: str, hostname: str) -> int:
    """An isolated device with its open ticket, as the repair loop leaves it; the ticket id."""
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        host = session.scalars(select(Host).where(Host.hostname == hostname)).one()
        for to in (L.SUSPECT, L.DRAINING, L.ISOLATED):
            transition(session, host, to, ctx=POLICY, reason="disk errors")
        ticket = repairs.open_ticket(
            session, POLICY, host, symptoms="disk errors", evidence=[], config=RepairConfig()
        )
        ticket_id = ticket.id
    engine.dispose()
    return ticket_id


def test_list_show_update(env: dict[str, str], db_url: str) -> None:
    assert json.loads(ok(env, "list", "-o", "json"))["items"] == []  # migrates the database
    seed(db_url, "h001", "h002")
    ticket = isolated_with_ticket(db_url, "h001")
    table = ok(env, "list")
    assert "h001" in table
    assert "reboot" in table
    assert "by status: open 1" in table
    out = ok(env, "update", str(ticket), "--status", "diagnosing", "--ref", "OPS-1", "-m", "bench")
    assert out.strip() == f"repair ticket {ticket} (h001, reboot): diagnosing"
    shown = json.loads(ok(env, "show", str(ticket), "-o", "json"))
    assert (shown["status"], shown["external_ref"]) == ("diagnosing", "OPS-1")
    assert "bench" in shown["notes"]
    device = json.loads(cli_ok(env, "device", "show", "h001", "-o", "json"))
    assert device["state"] == "in_repair"
    ok(env, "update", str(ticket), "--status", "repaired")
    device = json.loads(cli_ok(env, "device", "show", "h001", "-o", "json"))
    assert device["state"] == "verifying"  # the verification change waits for the engine
    change = json.loads(cli_ok(env, "change", "show", str(device["change_id"]), "-o", "json"))
    assert change["workflow"] == "reintegrate-host"
    only = json.loads(ok(env, "list", "--status", "repaired", "-o", "json"))
    assert [t["id"] for t in only["items"]] == [ticket]
    assert json.loads(ok(env, "list", "--overdue", "-o", "json"))["items"] == []


def test_exit_codes_and_messages(env: dict[str, str], db_url: str) -> None:
    ok(env, "list")
    seed(db_url, "h001")
    ticket = isolated_with_ticket(db_url, "h001")
    missing = run(env, "show", "999")
    assert (missing.returncode, missing.stderr.strip()) == (
        3,
        "error: TicketNotFound: no repair ticket 999",
    )
    refused = run(env, "update", str(ticket), "--status", "verified")
    assert refused.returncode == 4
    assert f"ticket {ticket} is open; it cannot become verified" in refused.stderr
    assert run(env, "update", str(ticket)).returncode == 2  # nothing to update
    assert run(env, "update", str(ticket), "--status", "fixed").returncode == 2
