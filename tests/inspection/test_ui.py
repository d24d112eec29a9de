"""Acceptance: the inspection pages in a real Chromium against a real server: the outliers view
lists the failing host, its report draws the curve over the model's band with ECharts.

Screenshots land in artifacts/screenshots/. Any console error fails the test: a CSP violation (an
inline script slipping in) shows up there.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from fleetops.main import create_app
from tests.fixtures.app import PASSWORD, make_settings, seed_users
from tests.fixtures.browser import browser, require_chromium, screenshot, serve  # noqa: F401
from tests.inspection.test_pages import CURVE, SLOW, Seeded, seed

pytestmark = pytest.mark.ui

SERIES = """id => {
  const chart = echarts.getInstanceByDom(document.getElementById(id));
  return chart.getOption().series.map(s => ({
    name: s.name,
    values: s.data.map(d => d !== null && typeof d === "object" ? d.value : d),
    red: s.data.map(d => d !== null && typeof d === "object" && Boolean(d.itemStyle)),
  }));
}"""


@dataclass(frozen=True)
class InspectionServer:
    url: str
    seeded: Seeded


@pytest.fixture(scope="module")
def inspection_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InspectionServer]:
    """A server on a fresh SQLite copy holding the inspection rows of `test_pages.seed`."""
    require_chromium()
    folder = tmp_path_factory.mktemp("inspection-ui")
    shutil.copyfile(sqlite_template, folder / "fleetops.db")
    db_url = f"sqlite:///{folder / 'fleetops.db'}"
    seed_users(db_url)
    seeded = seed(db_url)
    with serve(create_app(make_settings(db_url, folder / "data"))) as url:
        yield InspectionServer(url, seeded)


@pytest.fixture
def page(browser: Browser, inspection_server: InspectionServer) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(
        base_url=inspection_server.url, viewport={"width": 1360, "height": 900}
    )
    context.set_default_timeout(15_000)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    tab = context.new_page()
    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == []


def log_in(page: Page, path: str) -> None:
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def series_of(page: Page) -> dict[str, dict[str, Any]]:
    expect(page.locator("#inspection-chart")).to_have_attribute("data-drawn", "true")
    found: list[dict[str, Any]] = page.evaluate(SERIES, "inspection-chart")
    return {s["name"]: s for s in found}


def test_outliers_to_report_chart(page: Page, inspection_server: InspectionServer) -> None:
    seeded = inspection_server.seeded
    log_in(page, "/inspection")
    expect(page).to_have_url(re.compile(r"/inspection$"))
    failing = page.locator('table.outliers tr[data-host="dn-0003"]')
    expect(failing).to_contain_text("randread 4KiB qd32: 21 % of the model's median")
    expect(page.locator("table.outliers tr[data-status=fail]")).to_have_count(1)
    expect(page.locator('[data-model="dn-gen3"] [data-status=pass]')).to_have_text("8")
    screenshot(page, "inspection-outliers")

    failing.get_by_role("link", name=f"run #{seeded.failing}").click()
    expect(page).to_have_url(re.compile(f"/inspection/runs/{seeded.failing}$"))
    expect(page.locator("#run-status")).to_have_text("fail")
    series = series_of(page)
    assert list(series) == ["band low", "band", "median", "dn-0003"]
    bands = seeded.baseline.bands
    expected = [value * SLOW.get(name, 1.0) / bands[name].median * 100 for name, _, value in CURVE]
    assert series["dn-0003"]["values"] == pytest.approx(expected, abs=1e-3)
    assert series["dn-0003"]["red"] == [name in SLOW for name, _, _ in CURVE]
    low = [bands[name].low / bands[name].median * 100 for name, _, _ in CURVE]
    width = [
        (bands[name].high - bands[name].low) / bands[name].median * 100 for name, _, _ in CURVE
    ]
    assert series["band low"]["values"] == pytest.approx(low, abs=1e-3)
    assert series["band"]["values"] == pytest.approx(width, abs=1e-3)
    assert series["median"]["values"] == [100] * len(CURVE)
    # The tooltip gives the raw figure and unit of the point under the pointer.
    page.locator("#inspection-chart").hover(position={"x": 400, "y": 200})
    screenshot(page, "inspection-report")

    page.get_by_role("link", name="dn-0003").first.click()
    expect(page).to_have_url(re.compile(r"/inspection/hosts/dn-0003$"))
    expect(page.locator("table.host-runs tbody tr")).to_have_count(1)
    screenshot(page, "inspection-host")

    page.get_by_role("link", name="dn-gen3 baselines").click()
    expect(page).to_have_url(re.compile(r"/baselines/dn-gen3$"))
    expect(page.locator("table.bands tbody tr")).to_have_count(len(CURVE))
    expect(page.locator("table.versions tr.active")).to_contain_text("rebuilt after firmware 2.1")
    screenshot(page, "inspection-baselines")


def test_report_without_baseline_draws_the_raw_curve(
    page: Page, inspection_server: InspectionServer
) -> None:
    seeded = inspection_server.seeded
    log_in(page, f"/inspection/runs/{seeded.unjudged}")
    expect(page.locator("#no-baseline")).to_contain_text("cn-gen4 has no disk baseline yet")
    series = series_of(page)
    assert list(series) == ["wk-0011"]
    assert series["wk-0011"]["values"] == pytest.approx([v * 0.8 for _, _, v in CURVE])
    assert (
        page.evaluate(
            "echarts.getInstanceByDom(document.getElementById('inspection-chart'))"
            ".getOption().yAxis[0].type"
        )
        == "log"
    )
