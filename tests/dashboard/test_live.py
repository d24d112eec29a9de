"""The live screen: one publisher per server, pushed to every open screen, on real databases and
in a real Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from fleetops.dashboard.live import QUEUE_EVENTS, LiveFeed
from fleetops.db import make_engine, make_session_factory
from tests.fixtures.app import Tokens, seed_users
from tests.fixtures.browser import LiveServer, screenshot

EVERY_PANEL = {
    *("approvals", "changes", "findings", "devices", "throughput", "latency", "links"),
    "annotations",
}
PATCH = {"workflow": "os-patch", "selector": "rack=r002", "params": {}}


def submit(base: str, users: Tokens, title: str) -> dict[str, object]:
    answer = httpx.post(
        f"{base}/api/v1/changes",
        json={**PATCH, "title": title},
        headers=users.headers("developer"),
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    change: dict[str, object] = answer.json()
    assert change["state"] == "pending_approval"
    return change


def events(queue: asyncio.Queue[str | None]) -> list[dict[str, Any]]:
    found = []
    while not queue.empty():
        item = queue.get_nowait()
        assert item is not None
        data = next(line for line in item.splitlines() if line.startswith("data: "))
        found.append(json.loads(data.removeprefix("data: ")))
    return found


def test_the_feed_sends_what_changed_and_a_whole_state_to_who_fell_behind(
    live_server: LiveServer,
) -> None:
    """Against the server's own database: another process's change reaches the feed."""
    engine = make_engine(live_server.db_url)
    feed = LiveFeed(make_session_factory(engine, write=False), budget_fraction=0.05)
    users = seed_users(live_server.db_url)

    async def scenario() -> None:
        await feed.poll()
        first = feed.subscribe()
        [whole] = events(first)
        assert set(whole["panels"]) == EVERY_PANEL
        devices = whole["panels"]["devices"]
        assert devices["out"]["isolated"] >= 1  # the fleet fixture isolates some hosts

        await feed.poll()
        assert events(first) == []  # nothing changed, nothing sent

        slow = feed.subscribe()
        events(slow)
        for _ in range(QUEUE_EVENTS):  # fill the slow screen's queue
            slow.put_nowait("stale")
        change = await asyncio.to_thread(submit, live_server.url, users, "feed check")
        await feed.poll()
        [update] = events(first)
        assert list(update["panels"]) == ["approvals"]
        approvals = update["panels"]["approvals"]
        titles = [c["title"] for c in approvals["items"]]
        assert "feed check" in titles
        [resync] = events(slow)  # its backlog dropped for the whole state
        assert set(resync["panels"]) == EVERY_PANEL
        feed.unsubscribe(first)
        feed.unsubscribe(slow)
        assert change["id"]

    asyncio.run(scenario())
    engine.dispose()


def test_the_rollup_panels_rank_the_slow_links_and_draw_the_latency(db_url: str) -> None:
    """Rollup windows as the aggregation writes them, on both databases."""
    from fleetops.dashboard.live import rollups
    from fleetops.db import session_scope
    from fleetops.models import LatencyWindow, LinkWindow

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        for minute in range(1, 6):
            start = now - timedelta(minutes=minute)
            session.add(
                LatencyWindow(
                    start=start,
                    seconds=60,
                    metric="job",
                    count=9,
                    p50=10.0 * minute,
                    p95=20.0 * minute,
                    p99=30.0,
                    max=31.0,
                )
            )
        for tick in range(1, 31):  # 10 s windows over the last five minutes
            start = now - timedelta(seconds=10 * tick)
            recovered = tick > 6  # the ToR of r002 was slow until a minute ago
            for src, dst, slow, p95 in (
                ("r001", "r002", 6, 900.0 + tick),
                ("r001", "r003", 0, 40.0),
                ("r002", "r002", 9 if recovered else 0, 999.0 if recovered else 50.0),
            ):
                session.add(
                    LinkWindow(
                        start=start,
                        seconds=10,
                        src_rack=src,
                        dst_rack=dst,
                        transfers=10,
                        bytes=10**9,
                        slow=slow,
                        p50_ms=p95 / 2,
                        p95_ms=p95,
                        mbps_p50=100.0,
                    )
                )
    with sessions() as session:
        found = rollups(session, now)
    engine.dispose()
    latency = found["latency"]
    assert latency["last"] == {"p50": 10.0, "p95": 20.0, "p99": 30.0, "count": 9}  # the newest
    assert latency["series"] == [100.0, 80.0, 60.0, 40.0, 20.0]  # oldest first
    links = found["links"]["items"]
    assert [(link["src"], link["dst"], link["hot"], link["recovering"]) for link in links] == [
        ("r001", "r002", True, False),  # 60 % slow in its last windows: highlighted
        ("r002", "r002", False, True),  # its ToR was slow, and is fast again
        ("r001", "r003", False, False),
    ]
    assert links[0]["series"] == [930.0 - i for i in range(30)]  # oldest first
    assert links[0]["slow_fraction"] == 0.6
    matrix = found["links"]["matrix"]
    assert matrix["racks"] == ["r001", "r002", "r003"]
    assert matrix["cells"] == [  # [source, target, slow share now, hot]
        [0, 1, 0.6, True],
        [0, 2, 0.0, False],
        [1, 1, 0.0, False],
    ]


def log_in(page: Page, server: LiveServer, start: str) -> None:
    page.goto(start)
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(start) + "$"))


@pytest.mark.ui
def test_a_submitted_change_appears_on_an_open_screen_without_a_reload(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    log_in(page, live_server, "/live")
    expect(page.locator("#live-state")).to_have_text("Live")
    expect(page.locator('[data-count="approvals"]')).not_to_have_text("–")
    # every panel filled, the last ones too (the fleet fixture isolates some hosts)
    expect(page.locator('[data-figure="findings.critical"]')).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator('[data-figure="devices.out.isolated"]')).to_have_text(re.compile(r"^[1-9]"))
    expect(page.locator('[data-list="links"] li')).to_have_text(["none"])
    page.evaluate("window.notReloaded = true")
    screenshot(page, "live-before")

    users = seed_users(live_server.db_url)
    title = f"patch r002 {time.time_ns()}"
    change = submit(live_server.url, users, title)
    item = page.locator('[data-list="approvals"] li', has_text=title)
    expect(item).to_be_visible(timeout=5000)
    assert page.evaluate("window.notReloaded") is True
    expect(item.get_by_role("link")).to_have_attribute("href", f"/changes/{change['id']}")
    screenshot(page, "live-after-submit")

    page.goto("/live?kiosk=1")
    expect(page.locator("header.topbar")).to_be_hidden()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator('[data-list="approvals"] li', has_text=title)).to_be_visible()
    screenshot(page, "live-kiosk")
    assert errors == []
