"""The live screen's story on the running demo, in a real Chromium: a rack's uplink congests, its
links turn hot on /live without a reload, "switch link" proposes the change, another operator
approves it, the simulated switch drains the uplink and the links cool. Screenshots of each step
go to artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from fleetops.sim.demo import DEMO_PASSWORDS, demo_faults
from fleetops.sim.faults import UPLINK
from fleetops.sim.fleet import generate
from tests.fixtures.browser import screenshot
from tests.fixtures.server import free_port, running_server

pytestmark = pytest.mark.ui

HOSTS, RACKS = 200, 10
SLOW_AFTER = 5.0  # seconds after the demo starts: its uplink congests
HIGHLIGHT_S = 30  # the goal: a slow link is highlighted within this after it congests


def expected_tor() -> str:
    """The ToR whose uplink the demo congests (the demo picks it the same way)."""
    fleet = generate(hosts=HOSTS, racks=RACKS)
    fault = demo_faults(fleet, datetime.now(UTC), slow_link_after=SLOW_AFTER)[-1]
    assert fault.kind == "congested_link"
    return fault.target.removesuffix(UPLINK)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float]]:
    """The demo server's URL, and the monotonic time its uplink congests."""
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    env["FLEETOPS_DATA_DIR"] = str(folder)
    command = (
        "demo", "--hosts", str(HOSTS), "--racks", str(RACKS), "--slow-link-after", str(SLOW_AFTER)
    )  # fmt: skip
    with running_server(
        env, port=free_port(), command=command, output=folder / "demo.out", timeout=120
    ) as url:
        # The feed starts with the server, a moment before it answers: congestion at most then.
        yield url, time.monotonic() + SLOW_AFTER


def logged_in(browser: Browser, url: str, user: str, start: str) -> Page:
    context = browser.new_context(base_url=url, viewport={"width": 1360, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(start)
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(DEMO_PASSWORDS_BY_NAME[user])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(start) + "$"))
    return page


DEMO_PASSWORDS_BY_NAME = {role.value: password for role, password in DEMO_PASSWORDS.items()}


def test_a_slow_link_is_switched_from_the_live_screen_and_recovers(
    browser: Browser, demo: tuple[str, float]
) -> None:
    url, congested_at = demo
    tor = expected_tor()
    rack = tor.split("-")[1]  # <site>-<rack>-tor
    developer = logged_in(browser, url, "developer", "/live")
    expect(developer.locator("#live-state")).to_have_text("Live")
    screenshot(developer, "link-switch-1-live")

    # Highlighted without a reload, within the goal of the congestion.
    hot = developer.locator('[data-list="links"] li.hot').filter(has_text=rack).first
    left_ms = max(1_000, (congested_at + HIGHLIGHT_S - time.monotonic()) * 1000)
    expect(hot).to_be_visible(timeout=left_ms)
    expect(hot).to_contain_text("slow link")
    matrix = developer.locator("svg.link-matrix")
    expect(matrix).to_have_attribute("aria-label", re.compile(rf"slow now \(.*{rack}"))
    expect(matrix.locator("rect.hot").first).to_be_visible()
    screenshot(developer, "link-switch-2-slow-link")

    # Switch link: the page names the congested rack's ToR first, and proposes the change.
    hot.get_by_role("link", name=re.compile("^Switch link")).click()
    expect(developer.locator("#suspects tbody tr").first).to_contain_text(tor)
    expect(developer.locator("#suspects tbody tr").first).to_contain_text("likely")
    developer.get_by_role("button", name=f"Drain {tor} uplink").click()
    expect(developer).to_have_url(re.compile(r"/changes/\d+$"))
    change_url = developer.url
    expect(developer.locator("body")).to_contain_text(f"Shift traffic off {tor} uplink")
    expect(developer.locator("body")).to_contain_text(f"fleetops-sim-link drain {tor} uplink")
    expect(developer.locator("body")).to_contain_text("pending approval")
    screenshot(developer, "link-switch-3-proposed")

    # Four eyes: two other people approve it in the UI (a high-risk change needs two).
    for approver in ("operator", "admin"):
        page = logged_in(browser, url, approver, change_url.removeprefix(url))
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("body")).to_contain_text("Your approval is recorded.")
        screenshot(page, f"link-switch-4-approved-by-{approver}")
        page.context.close()
    developer.goto(change_url)
    expect(developer.locator("body")).to_contain_text("succeeded", timeout=60_000)
    screenshot(developer, "link-switch-5-succeeded")

    # The link cools on the live screen: its rows are no longer hot, they recover.
    developer.goto("/live")
    rows = developer.locator('[data-list="links"] li').filter(has_text=rack)
    expect(rows.filter(has_text="recovering").first).to_be_visible(timeout=90_000)
    expect(rows.and_(developer.locator("li.hot"))).to_have_count(0, timeout=90_000)
    screenshot(developer, "link-switch-6-recovered")
