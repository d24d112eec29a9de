"""The web UI in a real Chromium against a real server: login, filtering, drill-down, dark mode.

Screenshots land in artifacts/screenshots/ for a human to look at. Any console error fails a test:
a Content-Security-Policy violation (an inline script or handler slipping in) shows up there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.fixtures.browser import LiveServer, screenshot

pytestmark = pytest.mark.ui


@pytest.fixture
def console_errors(page: Page) -> Iterator[list[str]]:
    """Collect console errors and uncaught exceptions; the test ends by asserting none."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield errors
    assert errors == []


def log_in(page: Page, server: LiveServer, *, start: str = "/hosts") -> None:
    """Open a page anonymously, get sent to the login form, log in, land where we started."""
    page.goto(start)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(start) + "$"))


def test_login_filter_and_drill_down(
    page: Page, live_server: LiveServer, console_errors: list[str]
) -> None:
    page.goto("/login")
    screenshot(page, "login")
    log_in(page, live_server)
    expect(page.locator(".who")).to_contain_text("operator")

    expected = sorted(h.hostname for h in live_server.fleet.hosts if h.rack == "r003")
    page.get_by_label("Selector").fill("rack=r003")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/hosts\?selector=rack%3Dr003"))
    rows = page.locator("table.hosts tbody tr")
    expect(rows).to_have_count(min(len(expected), 50))
    assert rows.locator("td:nth-child(1)").all_inner_texts() == expected
    assert set(rows.locator("td:nth-child(4)").all_inner_texts()) == {"r003"}
    screenshot(page, "hosts-filtered")

    page.get_by_role("link", name="Hostname").click()  # sort descending: header toggles
    expect(page).to_have_url(re.compile(r"sort=-hostname"))
    expect(rows.first.locator("td").first).to_have_text(expected[-1])

    host = next(h for h in live_server.fleet.hosts if h.hostname == expected[-1])
    rows.first.get_by_role("link", name=host.hostname).click()
    expect(page).to_have_url(re.compile(f"/hosts/{host.hostname}$"))
    expect(page.locator("h1")).to_have_text(host.hostname)
    fields = page.locator("dl.fields").first
    expect(fields).to_contain_text(host.address)
    expect(fields).to_contain_text(host.model or "")
    expect(page.locator("main")).to_contain_text(host.cluster or "")
    expect(page.locator("main")).to_contain_text("host.create")
    screenshot(page, "host-detail")


def test_bad_selector_is_shown_and_back_navigation_works(
    page: Page, live_server: LiveServer, console_errors: list[str]
) -> None:
    log_in(page, live_server)
    page.get_by_label("Selector").fill("rack=(r001")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("alert")).to_contain_text("selector error at column")
    expect(page.locator("table.hosts tbody tr")).to_have_count(1)  # the "fix it" row
    screenshot(page, "hosts-bad-selector")
    console_errors.clear()  # the 400 answer itself is logged by Chromium; nothing else may be
    page.go_back()
    expect(page).to_have_url(re.compile(r"/hosts$"))


def test_dark_mode_and_theme_toggle(
    page: Page, live_server: LiveServer, console_errors: list[str]
) -> None:
    page.emulate_media(color_scheme="dark")
    log_in(page, live_server, start="/")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(14, 18, 23)"
    screenshot(page, "overview-dark")
    page.goto("/hosts?selector=cluster=k8s-stream&sort=-state")
    screenshot(page, "hosts-dark")
    page.goto("/racks")
    screenshot(page, "racks-dark")

    page.locator("#theme-toggle").click()  # the saved choice beats the OS preference
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.goto("/audit")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 246, 248)"
    screenshot(page, "audit-light")
    page.goto("/racks")
    screenshot(page, "racks-light")
    page.goto("/")
    screenshot(page, "overview-light")


def test_pages_work_without_javascript(browser: Browser, live_server: LiveServer) -> None:
    """Plain forms and links: an operator behind a locked-down browser still gets everything."""
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server)
        page.get_by_label("Selector").fill("rack=r002,state!=in_service")
        page.get_by_role("button", name="Filter").click()
        expected = sorted(
            h.hostname
            for h in live_server.fleet.hosts
            if h.rack == "r002" and h.state != "in_service"
        )
        assert expected  # the fixture puts some r002 hosts out of service
        rows = page.locator("table.hosts tbody tr td:nth-child(1)")
        assert rows.all_inner_texts() == expected
        expect(page.locator("#theme-toggle")).to_be_hidden()  # it needs JS, so it stays hidden
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(re.compile(r"/login$"))
    finally:
        context.close()


def test_the_hosts_table_by_keyboard(
    page: Page, live_server: LiveServer, console_errors: list[str]
) -> None:
    """j/k move between rows, Enter opens one, "/" goes to the filter and Escape leaves it."""
    log_in(page, live_server)
    page.keyboard.press("/")
    expect(page.get_by_label("Selector")).to_be_focused()
    page.keyboard.type("rack=r002")
    page.keyboard.press("Escape")
    expect(page.get_by_label("Selector")).not_to_be_focused()
    page.get_by_role("button", name="Filter").click()  # the filter itself, as a user submits it
    expect(page).to_have_url(re.compile(r"selector=rack%3Dr002"))
    rows = page.locator("table.hosts tbody tr")
    page.locator("h1").click()  # focus back on the page, off the button
    page.keyboard.press("j")
    expect(rows.nth(0)).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(1)).to_be_focused()
    second = rows.nth(1).locator("td").first.inner_text()
    page.keyboard.press("End")
    expect(rows.last).to_be_focused()
    page.keyboard.press("Home")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/hosts/{second}$"))
