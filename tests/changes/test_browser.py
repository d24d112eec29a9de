"""A change page in a real Chromium: approve from the page, then watch it run to the end, live.

The server runs the change engine on simulated hosts. Screenshots land in artifacts/screenshots/.
Any console error fails the test: a CSP violation (an inline script slipping in) shows up there.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from fleetops.main import create_app
from fleetops.sim.executor import SimulatedExecutor
from tests.changes.fleet import fleet_doc, load_fleet
from tests.fixtures.app import PASSWORD, Tokens, make_settings, seed_users
from tests.fixtures.browser import browser, screenshot, serve  # noqa: F401  (fixture)

pytestmark = pytest.mark.ui

# Slow enough (4 batches of 2 hosts, ~1 s each) for the page to show it running.
SLOW_WORKFLOW = """
name: greet
version: 1
description: Say hello on each host, two at a time, taking a moment for each.
stages:
  - name: greet
    steps:
      - operation: shell
        params: {command: "sleep 1; echo hello from {{ host.hostname }}"}
    strategy: {batch: 2, spread_by: rack}
"""


@dataclass(frozen=True)
class ChangeServer:
    url: str
    users: Tokens


@pytest.fixture(scope="module")
def change_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChangeServer]:
    """A server with its engine running on 100 simulated hosts, one user per role."""
    folder = tmp_path_factory.mktemp("changes-live")
    shutil.copyfile(sqlite_template, folder / "fleetops.db")
    db_url = f"sqlite:///{folder / 'fleetops.db'}"
    load_fleet(db_url, fleet_doc(100, 5, executor="simulated"))
    users = seed_users(db_url)
    settings = make_settings(
        db_url, folder / "data", engine_tick_seconds=0.1, budget_rack=1.0, budget_cluster=1.0
    )
    app = create_app(settings, executors={"simulated": SimulatedExecutor(latency=0.02, seed=3)})
    with serve(app) as url:
        yield ChangeServer(url, users)


@pytest.fixture
def change_page(browser: Browser, change_server: ChangeServer) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(
        base_url=change_server.url, viewport={"width": 1360, "height": 900}
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def console_errors(change_page: Page) -> Iterator[list[str]]:
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    change_page.on("console", on_console)
    change_page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield errors
    assert errors == []


def submit_as_developer(server: ChangeServer) -> int:
    with httpx.Client(base_url=server.url, headers=server.users.headers("developer")) as api:
        api.post("/api/v1/workflows", json={"source": SLOW_WORKFLOW})  # 409 once registered
        body = {
            "workflow": "greet",
            "selector": "h00[1-8]",
            "title": "Say hello on eight hosts",
            "reason": "Check every host answers after the network maintenance.",
        }
        response = api.post("/api/v1/changes", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["approvals_required"] == 1  # medium risk: 8 of 100 hosts
    change_id: int = response.json()["id"]
    return change_id


def log_in(page: Page, path: str, username: str = "operator") -> None:
    """Open `path`, get sent to the login form, log in, land back on `path`."""
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def test_approve_and_follow_a_change_live(
    change_page: Page, change_server: ChangeServer, console_errors: list[str]
) -> None:
    page = change_page
    change_id = submit_as_developer(change_server)
    detail = f"/changes/{change_id}"
    log_in(page, detail)
    expect(page.locator("#change-state")).to_have_text("pending approval")
    expect(page.locator("#live-indicator")).to_have_text("Live")
    expect(page.locator("#change-progress a.host-chip")).to_have_count(8)

    screenshot(page, "change-detail-pending")
    page.get_by_label("Comment").fill("Low impact, go ahead.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="approval is recorded")).to_be_visible()
    # From here on, nothing reloads the page: the marker survives only if updates are live.
    page.evaluate(
        """() => {
        window.seen = [];
        window.marker = "no reload";
        const state = () => document.getElementById("change-state").textContent.trim();
        new MutationObserver(() => window.seen.push(state())).observe(
            document.getElementById("change-live"), {childList: true, subtree: true});
    }"""
    )
    expect(page.locator("#change-state")).to_have_text("running")
    expect(page.locator("#change-progress a.host-chip.ok")).not_to_have_count(0)
    screenshot(page, "change-detail-running")
    expect(page.locator("#change-state")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#change-progress a.host-chip.ok")).to_have_count(8)
    expect(page.locator("#live-indicator")).to_have_text("Finished")
    assert page.evaluate("window.marker") == "no reload"
    assert "running" in page.evaluate("window.seen")
    expect(page.locator("#change-summary")).to_contain_text("operator")
    expect(page.locator("#change-summary")).to_contain_text("Low impact, go ahead.")
    screenshot(page, "change-detail")

    page.emulate_media(color_scheme="dark")
    screenshot(page, "change-detail-dark")
    page.locator("#change-progress a.host-chip", has_text="h003").click()
    expect(page.locator("pre.output").first).to_contain_text("hello from")
    screenshot(page, "change-host-dark")
    page.goto("/changes")
    expect(page.locator("table.changes tbody tr")).not_to_have_count(0)
    screenshot(page, "change-list-dark")
    page.emulate_media(color_scheme="light")
    screenshot(page, "change-list")
    page.get_by_role("link", name="greet@1").click()
    expect(page.locator("pre.yaml")).to_contain_text("sleep 1; echo hello")
    screenshot(page, "workflow")


def test_reading_and_approving_work_without_javascript(
    browser: Browser,  # noqa: F811
    change_server: ChangeServer,
) -> None:
    """Plain links and forms: the page reads, and approves, in a locked-down browser."""
    change_id = submit_as_developer(change_server)
    context = browser.new_context(base_url=change_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, f"/changes/{change_id}")
        expect(page.locator("#change-state")).to_have_text("pending approval")
        expect(page.locator("#change-progress a.host-chip")).to_have_count(8)
        expect(page.locator("#live-indicator")).to_be_hidden()
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("status").filter(has_text="approval is recorded")).to_be_visible()
        expect(page.locator("#change-summary")).to_contain_text("operator approved")
        page.get_by_role("link", name="Refresh").click()
        expect(page.locator("#change-state")).not_to_have_text("pending approval")
    finally:
        context.close()
