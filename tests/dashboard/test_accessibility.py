"""An axe-core scan of every page in Chromium: no serious or critical violation of WCAG 2 A/AA,
in the light theme and the dark one."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.fixtures.app import seed_users
from tests.fixtures.browser import LiveServer

pytestmark = pytest.mark.ui

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
BAD = ("serious", "critical")


def pages(server: LiveServer, change: int) -> list[str]:
    host = server.fleet.hosts[0].hostname
    rack = server.fleet.hosts[0].rack
    return [
        f"/changes/{change}",  # awaiting approval: its commands, votes and the approve form
        "/",
        "/live",
        "/live?kiosk=1",
        "/hosts",
        f"/hosts/{host}",
        f"/hosts?selector=rack%3D{rack}",
        "/racks",
        "/changes",
        "/findings",
        "/diagnosis",
        "/diagnosis/links",
        "/logs/templates",
        "/logs/search",
        "/devices",
        "/repairs",
        "/inspection",
        "/audit",
    ]


def violations(page: Page) -> list[str]:
    results: Any = Axe().run(page, options=WCAG)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in BAD:
            targets = [", ".join(n["target"]) for n in violation["nodes"][:3]]
            found.append(f"{violation['id']} ({violation['impact']}): {targets}")
    return found


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_passes_an_accessibility_scan(
    page: Page, live_server: LiveServer, theme: str
) -> None:
    page.emulate_media(color_scheme=theme)
    page.goto("/login")
    assert violations(page) == [], f"/login: {violations(page)}"
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(live_server.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/hosts$|/$"))
    body = {"workflow": "os-patch", "selector": "rack=r002", "params": {}, "title": "a11y"}
    change = httpx.post(
        f"{live_server.url}/api/v1/changes",
        json=body,
        headers=seed_users(live_server.db_url).headers("developer"),
        timeout=30,
    )
    assert change.status_code == 201, change.text
    found = {}
    for path in pages(live_server, change.json()["id"]):
        page.goto(path)
        if path.startswith("/live"):  # an event stream never goes idle: wait for its panels
            expect(page.locator("#live-state")).to_have_text("Live")
        else:
            page.wait_for_load_state("networkidle")
        if bad := violations(page):
            found[path] = bad
    assert found == {}, "\n".join(f"{path}: {bad}" for path, bad in found.items())
