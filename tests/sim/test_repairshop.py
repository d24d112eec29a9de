"""The demo's repair shop against a real `fleetops serve`: it works tickets through the public API
until the verification change returns the machine to service."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import select

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.devices.enums import Lifecycle
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import RepairConfig
from fleetops.devices.states import transition
from fleetops.models import Host
from fleetops.sim.repairshop import RepairShop, ShopTimes
from tests.changes.fleet import fleet_doc, load_fleet, wait_for
from tests.fixtures.app import seed_users
from tests.fixtures.server import cli_env, running_server

POLICY = AuditContext(actor="policy:test")


def isolate_with_ticket(db_url: str, *hostnames: str) -> None:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        for hostname in hostnames:
            host = session.scalars(select(Host).where(Host.hostname == hostname)).one()
            for to in (Lifecycle.SUSPECT, Lifecycle.DRAINING, Lifecycle.ISOLATED):
                transition(session, host, to, ctx=POLICY, reason="bad DIMM")
            repairs.open_ticket(
                session, POLICY, host, symptoms="bad DIMM", evidence=[], config=RepairConfig()
            )
    engine.dispose()


def test_the_shop_repairs_and_the_machine_returns(db_url: str, tmp_path: Path) -> None:
    users = seed_users(db_url)
    load_fleet(db_url, fleet_doc(6, 2, executor="local"))
    isolate_with_ticket(db_url, "h001", "h004")
    env = cli_env(
        db_url,
        tmp_path / "data",
        FLEETOPS_ENGINE_TICK_SECONDS="0.05",
        FLEETOPS_HEALTH_POLICY_ENABLED="true",
        FLEETOPS_HEALTH_POLICY_INTERVAL="0.3",
        FLEETOPS_LOCAL_EXECUTOR_HOSTS='["h*"]',  # the lab's hosts are this machine
    )
    outcomes: list[tuple[str, bool]] = []
    times = ShopTimes(diagnose=0.1, parts=0.1, repair=0.1, parts_share=0.5, failure_share=0.0)
    with running_server(env) as url:
        shop = RepairShop(
            url, users.operator, times=times, on_outcome=lambda h, ok: outcomes.append((h, ok))
        )

        async def rounds() -> list[tuple[int, str]]:
            done: list[tuple[int, str]] = []
            async with httpx.AsyncClient(timeout=10) as client:
                for _ in range(40):
                    done += await shop.run_once(client)
                    if sum(status == "repaired" for _, status in done) == 2:
                        break
                    await asyncio.sleep(0.1)
            return done

        done = asyncio.run(rounds())
        assert sorted(outcomes) == [("h001", True), ("h004", True)]
        for ticket in (1, 2):
            statuses = [s for t, s in done if t == ticket]
            assert statuses[0] == "diagnosing"
            assert statuses[-1] == "repaired"
        viewer = users.headers("viewer")
        for host in ("h001", "h004"):
            wait_for(
                lambda h=host: (
                    httpx.get(f"{url}/api/v1/devices/{h}", headers=viewer).json()["state"]
                    == "in_service"
                ),
                what=f"{host} back in service",
            )
        verified = httpx.get(
            f"{url}/api/v1/repairs", params={"status": "verified"}, headers=viewer
        ).json()
        assert verified["total"] == 2
