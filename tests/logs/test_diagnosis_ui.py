"""Acceptance: a real `fleetops serve`, a simulated fleet shipping its logs over HTTP, and Chromium.

The simulator runs in this process (its feed posts to `POST /api/v1/logs` with an ingest token,
as a shipper would); the server ingests, mines, aggregates and stores rollups; the page polls the
JSON API. The test watches the live job latency chart gain windows without a reload, then opens
the rack × rack heatmap and clicks a cell. Screenshots land in artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.logs.service import create_ingest_token
from fleetops.sim.feeder import LiveFeed
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload
from tests.fixtures.app import PASSWORD, seed_users
from tests.fixtures.browser import browser, require_chromium, screenshot  # noqa: F401  (fixture)
from tests.fixtures.server import cli_env, running_server

pytestmark = [pytest.mark.ui, pytest.mark.slow]

# ~230 lines/s. Seed 13 ends its first jobs 30-45 s after the start: the aggregation only counts
# lines that arrive in time (a backlog is late), so the feed must start with the server.
HOSTS, RACKS, LOAD, SEED = 100, 5, 3.0, 13


class FeedThread:
    """The simulator's live feed as an asyncio task on a thread of its own."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed
        self.ready = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.create_task(self.feed.run())
        self.ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def __enter__(self) -> FeedThread:
        self.thread.start()
        self.ready.wait(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def fleet_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, LiveFeed]]:
    """A fresh SQLite database with the simulated fleet and a viewer, served and fed live."""
    require_chromium()
    folder = tmp_path_factory.mktemp("diagnosis-ui")
    shutil.copyfile(sqlite_template, folder / "fleetops.db")
    db_url = f"sqlite:///{folder / 'fleetops.db'}"
    fleet = generate(hosts=HOSTS, racks=RACKS)
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        ctx = AuditContext(actor="test")
        apply_document(session, ctx, fleet)
        _, token = create_ingest_token(session, ctx, name="simulator")
    engine.dispose()
    seed_users(db_url)
    env = cli_env(
        db_url, folder / "data", FLEETOPS_ADMIN_PASSWORD=PASSWORD, FLEETOPS_ENGINE_ENABLED="false"
    )
    with running_server(env, output=folder / "server.log") as url:
        workload = Workload(fleet, seed=SEED, start=datetime.now(UTC), load=LOAD)
        feed = LiveFeed(workload, f"{url}/api/v1/logs", token)
        with FeedThread(feed):
            yield url, feed


@pytest.fixture
def page(browser: Browser, fleet_server: tuple[str, LiveFeed]) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(base_url=fleet_server[0], viewport={"width": 1360, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def points(page: Page, selector: str, attribute: str = "data-points") -> int:
    return int(page.locator(selector).get_attribute(attribute) or 0)


def wait_for(page: Page, check: object, *, timeout: float, what: str) -> None:
    """Poll `check()` (reading the live page, never reloading it) until true."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            screenshot(page, "diagnosis-timeout")
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(500)


def test_live_latency_then_heatmap(page: Page, fleet_server: tuple[str, LiveFeed]) -> None:
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    started = time.monotonic()

    page.goto("/diagnosis")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/diagnosis$"))

    chart = "#job-latency"
    first, tasks = points(page, chart), points(page, "#task-latency")
    wait_for(page, lambda: points(page, chart) > first, timeout=75, what="a job window")
    expect(page.locator(f"{chart} canvas")).to_have_count(1)  # uPlot drew it
    expect(page.locator("#live-indicator")).to_have_text("Live")
    expect(page.locator(".empty-state")).to_be_hidden()
    grown = points(page, chart)
    wait_for(page, lambda: points(page, chart) > grown, timeout=30, what="another job window")
    assert points(page, "#task-latency") > tasks
    expect(page.locator("#slow-jobs tbody tr").first).to_contain_text("application_")
    expect(page.locator("#job-latest [data-field=count]")).not_to_have_text("0")
    screenshot(page, "diagnosis-live")
    assert fleet_server[1].sent > 0

    page.get_by_role("link", name=re.compile("Rack .* links")).click()
    expect(page).to_have_url(re.compile(r"/diagnosis/links"))
    heatmap = "#link-heatmap"
    wait_for(page, lambda: points(page, heatmap, "data-cells") > 0, timeout=30, what="cells")
    expect(page.locator(f"{heatmap} canvas").first).to_be_visible()
    screenshot(page, "diagnosis-heatmap")

    # Click the centre of the first cell, found through the chart's own coordinate system.
    src, dst, x, y = page.evaluate(
        """() => {
            const chart = echarts.getInstanceByDom(document.getElementById("link-heatmap"));
            const item = chart.getOption().series[0].data[0];
            const [cx, cy] = chart.convertToPixel({seriesIndex: 0}, item.value.slice(0, 2));
            const box = document.getElementById("link-heatmap").getBoundingClientRect();
            return [item.cell.src_rack, item.cell.dst_rack, box.left + cx, box.top + cy];
        }"""
    )
    page.mouse.click(x, y)
    expect(page).to_have_url(re.compile(f"/diagnosis/links/{src}/{dst}"))
    expect(page.locator("h1")).to_contain_text(f"{src} → {dst}")
    wait_for(page, lambda: points(page, "#link-latency") > 0, timeout=15, what="the cell series")
    screenshot(page, "diagnosis-link")
    assert errors == []
    assert time.monotonic() - started < 100
