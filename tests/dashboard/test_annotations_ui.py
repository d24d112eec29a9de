"""Chart annotations and the URL's range and refresh, in a real Chromium against a real server."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, Request, expect

from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.models import ChangeRequest, LatencyWindow
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = pytest.mark.ui


def seed(db_url: str, title: str, ran: tuple[int, int] = (6, 3)) -> int:
    """Job latency for the last 15 minutes (10 s windows) and a change that ran `ran` (6 to 3)
    minutes ago."""
    now = datetime.now(UTC)
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        first = now.replace(second=now.second // 10 * 10, microsecond=0) - timedelta(minutes=15)
        for i in range(90):
            start = first + timedelta(seconds=10 * i)
            if not session.get(LatencyWindow, (start, 10, "job")):
                session.add(
                    LatencyWindow(
                        start=start, seconds=10, metric="job", count=5, p50=3.0, p95=6.0, p99=8.0
                    )
                )
        change = ChangeRequest(
            title=title,
            selector="rack=r001",
            risk="low",
            state="succeeded",
            requester="developer",
            started_at=now - timedelta(minutes=ran[0]),
            finished_at=now - timedelta(minutes=ran[1]),
        )
        session.add(change)
        session.flush()
        change_id = change.id
    engine.dispose()
    return change_id


def log_in(page: Page, server: LiveServer, start: str) -> None:
    page.goto(start)
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(start) + "$"))


def test_a_change_is_marked_on_the_chart_and_its_mark_opens_it(
    page: Page, live_server: LiveServer
) -> None:
    change_id = seed(live_server.db_url, "patch the kernel on r001")
    log_in(page, live_server, "/diagnosis?range=15m")
    plot = page.locator("#job-latency .uplot")
    expect(plot).to_have_attribute("data-marks", re.compile(rf":/changes/{change_id}\b"))
    started = plot.get_attribute("data-marks") or ""
    x = next(int(m.split(":")[0]) for m in started.split() if m.endswith(f"/changes/{change_id}"))

    over = page.locator("#job-latency .u-over").bounding_box()
    assert over is not None
    page.mouse.move(over["x"] + x, over["y"] + over["height"] / 2)
    tip = page.locator("#job-latency .annotation-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("change started")
    expect(tip).to_contain_text("patch the kernel on r001")
    screenshot(page, "annotations-diagnosis")
    page.mouse.click(over["x"] + x, over["y"] + over["height"] / 2)
    expect(page).to_have_url(re.compile(rf"/changes/{change_id}$"))

    # The same events, as links for the keyboard.
    page.go_back()
    events = page.locator("details.annotation-list")
    events.locator("summary").click()
    link = events.get_by_role("link", name=f"#{change_id} patch the kernel on r001").first
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/changes/{change_id}$"))


def test_a_deep_link_keeps_its_range_and_refresh(page: Page, live_server: LiveServer) -> None:
    seed(live_server.db_url, "another change")
    polls: list[float] = []

    def on_request(request: Request) -> None:
        if "/api/v1/diagnosis/latency?metric=job" in request.url:
            polls.append(time.monotonic())

    page.on("request", on_request)
    log_in(page, live_server, "/diagnosis?range=1h&refresh=5s")
    refresh = page.get_by_label("Auto-refresh")
    expect(refresh).to_have_value("5s")
    expect(page.locator(".range-picker [aria-current=true]")).to_have_text("1h")
    page.wait_for_timeout(6_500)
    assert len(polls) >= 2  # fetched on load, then every 5 s

    refresh.select_option("off")
    expect(page).to_have_url(re.compile(r"/diagnosis\?range=1h&refresh=off$"))
    six_hours = page.locator(".range-picker").get_by_role("link", name="6h")
    expect(six_hours).to_have_attribute("href", "/diagnosis?range=6h&refresh=off")

    page.reload()
    expect(page).to_have_url(re.compile(r"/diagnosis\?range=1h&refresh=off$"))
    expect(refresh).to_have_value("off")
    expect(page.locator(".range-picker [aria-current=true]")).to_have_text("1h")
    page.wait_for_timeout(1_000)  # the first fetch after the reload
    polls.clear()
    page.wait_for_timeout(6_000)
    assert polls == []  # off: no polling

    six_hours.click()
    expect(page).to_have_url(re.compile(r"/diagnosis\?range=6h&refresh=off$"))
    expect(refresh).to_have_value("off")

    answer = page.goto("/diagnosis?range=1h&refresh=7s")
    assert answer is not None
    assert answer.status == 400
    expect(page.locator("main")).to_contain_text("unknown refresh '7s'")


def test_the_capacity_chart_marks_a_device_taken_out_of_service(
    page: Page, live_server: LiveServer
) -> None:
    log_in(page, live_server, "/repairs/metrics?hours=6")
    chart = page.locator("#capacity-chart")
    expect(chart).to_have_attribute("data-points", re.compile(r"[1-9]"))
    seed(live_server.db_url, "a change the capacity chart marks")
    page.reload()
    # 0 until the chart exists and has its series (the predicate runs from the first frame).
    count = """n => {
      const chart = n && window.echarts && window.echarts.getInstanceByDom(n);
      const series = chart && chart.getOption() && chart.getOption().series;
      const marks = series && series[0] && series[0].markLine && series[0].markLine.data;
      return marks ? marks.length : 0;
    }"""
    page.wait_for_function(
        f"() => ({count})(document.getElementById('capacity-chart')) > 0", timeout=10_000
    )
    expect(page.locator("details.annotation-list [data-annotation-count]")).not_to_have_text(
        "(loading)"
    )


def test_the_live_screen_marks_a_change_on_its_latency_sparkline(
    page: Page, live_server: LiveServer
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    engine = make_engine(live_server.db_url)
    with session_scope(make_session_factory(engine)) as session:
        for minute in range(1, 15):  # the screen draws minute windows
            start = now - timedelta(minutes=minute)
            if not session.get(LatencyWindow, (start, 60, "job")):
                session.add(
                    LatencyWindow(start=start, seconds=60, metric="job", count=9, p50=2.0, p95=4.0)
                )
    engine.dispose()
    change_id = seed(live_server.db_url, "drain r002 for the firmware update", ran=(10, 9))
    log_in(page, live_server, "/live")
    title = page.locator("title", has_text="change started: #")
    mark = page.locator("[data-spark=latency] svg g.mark-change", has=title).filter(
        has_text="drain r002 for the firmware update"
    )
    expect(mark).to_have_count(1)
    events = page.locator("[data-list=annotations]")
    expect(events.get_by_role("link", name=f"#{change_id} drain r002")).to_have_count(2)
    screenshot(page, "annotations-live")
    mark.click()
    expect(page).to_have_url(re.compile(rf"/changes/{change_id}$"))
