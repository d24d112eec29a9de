"""Acceptance: the lifecycle board, a device timeline and the repair queue in a real Chromium,
against a real `fleetops serve` on a simulated fleet whose devices were moved through the services.

The board must follow a device moved through the API while it is open, without a reload.
Screenshots land in artifacts/screenshots/. Any console error fails the test: a CSP violation (an
inline script slipping in) shows up there.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect
from sqlalchemy import select

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.devices.enums import Lifecycle, TicketStatus
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import RepairConfig, TicketUpdate
from fleetops.devices.states import transition
from fleetops.models import Host, utcnow
from tests.findings.factory import seed as seed_findings
from tests.fixtures.app import PASSWORD, Tokens, seed_users
from tests.fixtures.browser import browser, load_fleet, require_chromium, screenshot  # noqa: F401
from tests.fixtures.server import cli_env, running_server

pytestmark = pytest.mark.ui

L = Lifecycle
OPS = AuditContext(actor="ops")


@dataclass(frozen=True)
class DeviceServer:
    url: str
    tokens: Tokens
    hosts: list[str]  # the fleet's hostnames, in order
    findings: list[int]
    tickets: list[int]


def seed_devices(db_url: str, hostnames: list[str], findings: list[int]) -> list[int]:
    """Move a few devices through the lifecycle over the last hours, with their repair tickets."""
    now = utcnow()
    config = RepairConfig()
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        hosts = {h.hostname: h for h in session.scalars(select(Host))}

        def walk(name: str, *steps: tuple[Lifecycle, float], evidence: Sequence[int] = ()) -> None:
            for to, hours_ago in steps:
                when = now - timedelta(hours=hours_ago)
                transition(
                    session,
                    hosts[name],
                    to,
                    ctx=OPS,
                    reason=f"{to.value.replace('_', ' ')}: disk errors on sdb",
                    evidence=evidence,
                    now=when,
                )

        a, b, c, d = hostnames[2], hostnames[5], hostnames[9], hostnames[14]
        # a: isolated on two findings, its reboot ticket past its SLA.
        walk(a, (L.SUSPECT, 11), (L.DRAINING, 10.8), (L.ISOLATED, 10), evidence=findings)
        late = repairs.open_ticket(
            session,
            OPS,
            hosts[a],
            symptoms="disk I/O errors on sdb",
            evidence=findings,
            config=config,
            now=now - timedelta(hours=10),
        )
        # b: in repair, waiting for a part from the vendor.
        walk(b, (L.SUSPECT, 5), (L.DRAINING, 4.8), (L.ISOLATED, 4.5), evidence=findings[:1])
        parts = repairs.open_ticket(
            session,
            OPS,
            hosts[b],
            symptoms="ECC errors on DIMM B2",
            evidence=findings[:1],
            config=config,
            now=now - timedelta(hours=4.5),
        )
        repairs.update(
            session,
            OPS,
            parts,
            TicketUpdate(
                status=TicketStatus.WAITING_PARTS,
                note="DIMM ordered",
                vendor="Dell",
                rma_number="RMA-4711",
                part="32GB DDR4 RDIMM",
            ),
            now=now - timedelta(hours=4),
        )
        walk(b, (L.IN_REPAIR, 4))
        # c: repaired and verified an hour ago, back in service.
        walk(c, (L.SUSPECT, 8), (L.DRAINING, 7.8), (L.ISOLATED, 7.5), evidence=findings[1:])
        done = repairs.open_ticket(
            session,
            OPS,
            hosts[c],
            symptoms="NIC flapping",
            evidence=findings[1:],
            config=config,
            now=now - timedelta(hours=7.5),
        )
        walk(c, (L.IN_REPAIR, 7), (L.VERIFYING, 2), (L.IN_SERVICE, 1))
        repairs.close(
            session, OPS, done, TicketStatus.VERIFIED, reason="passed", now=now - timedelta(hours=1)
        )
        # d: only suspect.
        walk(d, (L.SUSPECT, 0.5), evidence=findings[1:])
        tickets = [late.id, parts.id, done.id]
    engine.dispose()
    return tickets


@pytest.fixture(scope="module")
def device_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeviceServer]:
    """`fleetops serve` on a fresh SQLite copy: 60 simulated hosts in 4 racks, moved devices."""
    require_chromium()
    folder = tmp_path_factory.mktemp("devices-ui")
    shutil.copyfile(sqlite_template, folder / "fleetops.db")
    db_url = f"sqlite:///{folder / 'fleetops.db'}"
    fleet = load_fleet(db_url, hosts=60, racks=4)
    tokens = seed_users(db_url)
    hostnames = [h.hostname for h in fleet.hosts]
    findings = seed_findings(
        db_url,
        {"entity": hostnames[2], "title": f"{hostnames[2]}: disk I/O errors"},
        {"entity": hostnames[2], "kind": "smart_reallocated", "title": "reallocated sectors"},
    )
    tickets = seed_devices(db_url, hostnames, findings)
    env = cli_env(
        db_url, folder / "data", FLEETOPS_ADMIN_PASSWORD=PASSWORD, FLEETOPS_ENGINE_ENABLED="false"
    )
    with running_server(env) as url:
        yield DeviceServer(url, tokens, hostnames, findings, tickets)


@pytest.fixture
def page(browser: Browser, device_server: DeviceServer) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(
        base_url=device_server.url, viewport={"width": 1440, "height": 900}
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def console_errors(page: Page) -> Iterator[list[str]]:
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield errors
    assert errors == []


def count(page: Page, state: str) -> Locator:
    return page.locator(f"#col-{state} [data-count]")


def test_board_follows_the_fleet_then_timeline_and_queue(
    page: Page, device_server: DeviceServer, console_errors: list[str]
) -> None:
    server = device_server
    a, b = server.hosts[2], server.hosts[5]
    page.goto("/devices")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/devices$"))

    columns = page.locator("section.board-col")
    expect(columns).to_have_count(len(Lifecycle))
    assert columns.evaluate_all("cols => cols.map(c => c.dataset.state)") == [
        s.value for s in Lifecycle
    ]
    # The imported fleet has one host in each of suspect, draining, isolated, in_repair and
    # provisioning (the inventory's state is the device's); the fixture moved three more.
    expected = {"in_service": 52, "suspect": 2, "draining": 1, "isolated": 2, "in_repair": 2}
    for state, n in expected.items():
        expect(count(page, state)).to_have_text(str(n))
    expect(page.locator("#col-isolated")).to_contain_text(a)
    expect(page.locator("#col-in_service .board-more")).to_have_text("40 more →")
    expect(page.locator("#oos-devices")).to_have_text("5")
    expect(page.locator("#open-tickets")).to_have_text("2")
    expect(page.locator("#live-indicator")).to_have_text("Live")

    # Move a device through the API while the page is open: the board follows, no reload.
    page.evaluate("window.notReloaded = true")
    moved = server.hosts[30]
    with httpx.Client(base_url=server.url, headers=server.tokens.headers("operator")) as api:
        answer = api.post(
            f"/api/v1/devices/{moved}/transition",
            json={"to": "suspect", "reason": "fan speed alarms", "evidence": server.findings[1:]},
        )
    assert answer.status_code == 200, answer.text
    expect(count(page, "suspect")).to_have_text("3", timeout=15_000)
    expect(count(page, "in_service")).to_have_text("51")
    expect(page.locator("#col-suspect")).to_contain_text(moved)
    expect(page.locator("#col-suspect")).to_contain_text("fan speed alarms")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "devices-board")

    # Into the isolated device's timeline: its transitions with their evidence, its ticket.
    page.locator("#col-isolated").get_by_role("link", name=a).click()
    expect(page).to_have_url(re.compile(f"/devices/{a}$"))
    expect(page.locator("h1")).to_have_text(a)
    steps = page.locator("li.timeline-step")
    expect(steps).to_have_count(3)
    assert steps.evaluate_all("s => s.map(e => e.dataset.to)") == [
        "isolated",
        "draining",
        "suspect",
    ]
    for finding in server.findings:
        expect(steps.first.locator(f'a[href="/findings/{finding}"]')).to_have_text(
            f"finding #{finding}"
        )
    late = server.tickets[0]
    expect(page.locator(f'#device-tickets a[href="/repairs/{late}"]')).to_be_visible()
    expect(page.locator("#device-tickets .sla")).to_contain_text("overdue by")
    expect(page.locator("#device-actions")).to_contain_text("operators move devices")
    screenshot(page, "device-timeline")
    steps.first.get_by_role("link", name=f"finding #{server.findings[0]}").click()
    expect(page).to_have_url(re.compile(f"/findings/{server.findings[0]}$"))
    page.go_back()

    # The repair queue: live tickets first, most urgent SLA first, then the closed one.
    page.goto("/repairs")
    live = page.locator("#live-tickets tbody tr")
    expect(live).to_have_count(2)
    expect(live.first).to_contain_text(a)
    expect(live.first.locator(".sla")).to_contain_text("overdue by 2.0 h")
    expect(live.nth(1)).to_contain_text(b)
    expect(live.nth(1)).to_contain_text("waiting parts")
    expect(page.locator("#closed-tickets tbody tr")).to_have_count(1)
    expect(page.locator("#closed-tickets .sla")).to_have_text("met")
    screenshot(page, "repair-queue")
    live.nth(1).get_by_role("link", name=str(server.tickets[1])).click()
    expect(page.locator("#ticket-notes")).to_contain_text("DIMM ordered")
    expect(page.locator("main")).to_contain_text("RMA-4711")
    screenshot(page, "repair-ticket")

    # The metrics: the out-of-service chart drawn from the API.
    page.goto("/repairs/metrics?hours=24")
    chart = page.locator("#capacity-chart")
    expect(chart.locator("canvas").first).to_be_visible()
    expect(chart).to_have_attribute("data-last", "2")
    expect(page.locator("#mttr-mean")).to_contain_text("6.5 h")
    screenshot(page, "repair-metrics")


def test_an_admin_enables_a_remediation_rule_from_its_page(
    page: Page, device_server: DeviceServer, console_errors: list[str]
) -> None:
    page.goto("/devices")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Remediation →").click()
    expect(page).to_have_url(re.compile(r"/remediation$"))
    rule = page.locator("#rule-drain-predicted-disk-failure")
    expect(rule.locator(".badge")).to_have_text("dry run")
    expect(rule).to_contain_text("2 an hour, 2 out at once")
    rule.get_by_role("button", name="Set drain-predicted-disk-failure to enabled").click()
    expect(page).to_have_url(re.compile(r"/remediation$"))
    expect(rule.locator(".badge")).to_have_text("enabled")
    with httpx.Client(base_url=device_server.url) as api:
        rules = api.get("/api/v1/policies", headers=device_server.tokens.headers("viewer")).json()
    modes = {r["name"]: r["mode"] for r in rules}
    assert modes == {
        "drain-predicted-disk-failure": "enabled",
        "release-reserve-before-full": "dry_run",
    }
    rule.get_by_role("button", name="Set drain-predicted-disk-failure to dry run").click()
    expect(rule.locator(".badge")).to_have_text("dry run")
    screenshot(page, "remediation")
    assert console_errors == []
