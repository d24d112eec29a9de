"""The diagnosis pages through HTTP, as a browser without JavaScript reads them (session cookie).

Rows go straight into the rollup and raw-line tables; the pages must show them, keep every filter
in their links, say what to do when there is nothing, and refuse bad parameters with a message."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from fleetops.config import Settings
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.findings import service as findings
from fleetops.findings.schemas import Observation
from fleetops.models import (
    HostErrorCount,
    HostTaskWindow,
    LogLine,
    LogTemplate,
    TemplateCount,
    utcnow,
)
from tests.dashboard.test_pages import log_in
from tests.fixtures.app import PASSWORD, Tokens, make_settings
from tests.logs.test_diagnosis_api import job, latency, link, minute, write

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>")
_HANDLER = re.compile(r"\son[a-z]+=")
PAGES = [
    "/diagnosis",
    "/diagnosis/links",
    "/diagnosis/links/r001/r002",
    "/diagnosis/host_tasks?entity=dn-1",
    "/logs/templates",
    "/logs/search",
]
NO_LOGS = (
    "No logs yet: point a shipper at <code>POST /api/v1/logs</code>, see <code>docs/logs.md</code>"
)


RECEIVING, SLOW = "Receiving block &lt;*&gt; src", "Slow BlockReceiver write"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path / "data", ingest_enabled=False, engine_enabled=False)


@pytest.fixture
def viewer(client: TestClient, tokens: Tokens) -> TestClient:
    client.cookies.clear()
    assert log_in(client, "viewer", PASSWORD).status_code == 303
    return client


def ok(client: TestClient, path: str, **params: object) -> str:
    response: httpx.Response = client.get(path, params=params or None)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    text = response.text
    assert _INLINE_SCRIPT.findall(text) == [], path
    assert not _HANDLER.search(text), path
    return text


def lines(
    db_url: str, count: int, base: datetime, *, host: str = "dn-1", template: int = 7
) -> None:
    """`count` lines, one a second, the last one a second before `base`."""
    write(
        db_url,
        *(
            LogLine(
                ts=base - timedelta(seconds=count - i),
                received_at=base,
                host=host,
                source="agent",
                file="/var/log/x.log",
                offset=i,
                template_id=template,
                message=f"Receiving block blk_{i} <tag>",
                labels={},
                flags=0,
                size=30,
            )
            for i in range(count)
        ),
    )


def test_pages_need_a_session(client: TestClient) -> None:
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path


def test_empty_pages_say_how_to_send_logs(viewer: TestClient) -> None:
    for path in PAGES:
        text = ok(viewer, path)
        if path.startswith("/diagnosis/links/") or "host_tasks" in path:
            continue  # a cell or a host page is reached from data, not from the menu
        assert NO_LOGS in text, path
    assert "No job finished in this range yet" in ok(viewer, "/diagnosis")


def test_overview_shows_latency_jobs_and_open_findings(viewer: TestClient, db_url: str) -> None:
    now = utcnow().replace(microsecond=0)
    write(
        db_url,
        *(latency(now - timedelta(seconds=s), p50=40.0) for s in (50, 40, 30)),
        latency(now - timedelta(seconds=20), metric="task", p50=850.0),
        job(
            "application_1_0001", state="finished", started=now - timedelta(minutes=9), seconds=420
        ),
        job("application_1_0002", state="finished", started=now - timedelta(minutes=2), seconds=45),
    )
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        findings.report(
            session,
            Observation(
                kind="straggler",
                detector="straggler",
                entity_type="host",
                entity="dn-1",
                severity="warning",
                score=3.0,
                title="dn-1: tasks take 3× as long",
                evidence=[],
                details={},
                onset_at=now,
            ),
            now=now,
        )
    engine.dispose()
    text = ok(viewer, "/diagnosis")
    assert NO_LOGS not in text
    assert 'id="job-latency" class="chart" data-chart="latency" data-points="3"' in text
    assert 'data-points="1"' in text  # the task chart
    assert "/static/vendor/uPlot-1.6.32.iife.min.js" in text
    assert "40.0 s" in text  # p50 of the latest job window
    assert "850 ms" in text  # task p50
    slow = text.index("application_1_0001")
    assert slow < text.index("application_1_0002")  # slowest first
    assert "7.0 min" in text
    assert 'href="/findings?status=open"' in text
    assert 'href="/findings?status=open&amp;kind=straggler"' in text
    assert 'id="open-findings">1</a>' in text
    assert "data-live" in text
    assert 'data-query="range=15m"' in text
    hour = ok(viewer, "/diagnosis", range="1h")
    assert 'aria-current="true">1h</a>' in hour
    fixed = ok(
        viewer, "/diagnosis", **{"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}
    )
    assert "data-live" not in fixed  # an explicit range does not follow the clock
    assert "2026-01-01T00:00:00Z – 2026-01-01T01:00:00Z" in fixed


def test_links_heatmap_page_highlights_a_rack_and_links_cells(
    viewer: TestClient, db_url: str
) -> None:
    now = utcnow()
    # the aggregator writes every cell for 10 s and 1 min windows: short ranges read the former
    write(
        db_url,
        *(
            row
            for seconds in (10, 60)
            for row in (
                link(minute(now, 2), transfers=10, slow=5, p95=80.0, seconds=seconds),
                link(minute(now, 2), "r002", "r003", transfers=10, slow=0, seconds=seconds),
                link(minute(now, 2), "r003", "r001", transfers=8, slow=1, seconds=seconds),
            )
        ),
    )
    text = ok(viewer, "/diagnosis/links")
    assert 'data-chart="heatmap" data-cells="3"' in text
    assert "/static/vendor/echarts-6.1.0.min.js" in text
    assert 'class="slow-cell"' in text
    assert '<span class="badge bad">50%</span>' in text
    assert 'href="/diagnosis/links/r001/r002"' in text
    picked = ok(viewer, "/diagnosis/links", entity="r001", color="slow", range="1h")
    assert 'data-entity="r001"' in picked
    assert 'data-color="slow"' in picked
    assert "Cells of r001" in picked
    cells = re.findall(r'href="(/diagnosis/links/[^"]+)"', html.unescape(picked))
    assert cells == ["/diagnosis/links/r001/r002?range=1h", "/diagnosis/links/r003/r001?range=1h"]
    hours = re.findall(r'href="(/diagnosis/links\?[^"]+)"', html.unescape(picked))
    assert "/diagnosis/links?entity=r001&color=slow&range=6h" in hours  # the picker keeps filters

    detail = ok(viewer, "/diagnosis/links/r001/r002")
    assert '10 <span class="muted">(10.0 MB)</span>' in detail
    assert '5 <span class="muted">(50%)</span>' in detail
    assert 'data-url="/api/v1/diagnosis/links/r001/r002"' in detail
    assert 'href="/diagnosis/links/r002/r001"' in detail  # the reverse direction
    # Live updates ask for the windows the page drew (10 s up to an hour, minutes beyond).
    assert 'data-seconds="10"' in detail
    assert 'data-seconds="60"' in ok(viewer, "/diagnosis/links/r001/r002", range="6h")
    assert viewer.get("/diagnosis/links", params={"color": "red"}).status_code == 422


def test_host_page_from_a_finding_link(viewer: TestClient, db_url: str) -> None:
    now = utcnow()
    write(
        db_url,
        HostTaskWindow(
            start=minute(now, 3),
            host="dn-1",
            tasks=20,
            failed=2,
            p50_ms=900.0,
            p95_ms=2500.0,
            ratio=3.1,
        ),
        HostErrorCount(start=minute(now, 3), host="dn-1", signature="disk_io", count=4),
    )
    since, until = minute(now, 10).isoformat(), now.isoformat()
    text = ok(viewer, "/diagnosis/host_tasks", entity="dn-1", **{"from": since, "to": until})
    assert "20 finished, 2 failed" in text
    assert "3.10×" in text
    assert "disk_io" in text
    assert 'data-url="/api/v1/diagnosis/hosts/dn-1/tasks"' in text
    assert 'href="/hosts/dn-1"' in text
    assert "/logs/search?host=dn-1&amp;from=" in text
    assert 'class="slow-cell"' in text
    assert viewer.get("/diagnosis/host_tasks").status_code == 422  # which host?


def test_unknown_view_and_bad_times_are_explained(viewer: TestClient) -> None:
    unknown = viewer.get("/diagnosis/disk_latency_p99", params={"entity": "dn-1"})
    assert unknown.status_code == 404
    assert "links (/diagnosis/links)" in unknown.text
    bad = viewer.get("/diagnosis", params={"from": "last tuesday"})
    assert bad.status_code == 400
    assert "ISO 8601" in bad.text
    long = viewer.get(
        "/logs/search", params={"from": "2026-01-01T00:00Z", "to": "2026-01-01T00:00Z"}
    )
    assert long.status_code == 400
    assert "before" in html.unescape(long.text)
    too_long = viewer.get("/diagnosis/links", params={"from": "2026-01-01", "to": "2026-01-03"})
    assert too_long.status_code == 400


def test_template_explorer_searches_sorts_and_draws_sparklines(
    viewer: TestClient, db_url: str
) -> None:
    now = utcnow()
    write(
        db_url,
        LogTemplate(
            id=7,
            text="Receiving block <*> src: <*>",
            count=500,
            first_seen=now - timedelta(hours=5),
            last_seen=now - timedelta(minutes=1),
        ),
        LogTemplate(
            id=8,
            text="Slow BlockReceiver write packet to mirror took <*>ms",
            count=20,
            first_seen=now - timedelta(minutes=30),
            last_seen=now,
        ),
        TemplateCount(start=minute(now, 5), template_id=7, count=40, hosts=3),
        TemplateCount(start=minute(now, 2), template_id=7, count=60, hosts=3),
        TemplateCount(start=minute(now, 2), template_id=8, count=9, hosts=1),
    )
    text = ok(viewer, "/logs/templates")
    assert text.index(RECEIVING) < text.index(SLOW)  # by count
    assert '<polyline points="' in text
    assert 'aria-label="100 lines, last 1 h"' in text
    assert 'href="/logs/search?template=7"' in text
    recent = ok(viewer, "/logs/templates", order="last_seen")
    assert recent.index(SLOW) < recent.index(RECEIVING)
    first = ok(viewer, "/logs/templates", order="first_seen")
    assert first.index(SLOW) < first.index(RECEIVING)
    found = ok(viewer, "/logs/templates", q="BlockReceiver")
    assert SLOW in found
    assert RECEIVING not in found
    assert "No template matches this text." in ok(viewer, "/logs/templates", q="nothing like it")
    assert viewer.get("/logs/templates", params={"order": "text"}).status_code == 422


def test_log_search_filters_pages_and_offers_a_tail(viewer: TestClient, db_url: str) -> None:
    base = utcnow()
    lines(db_url, 130, base)
    lines(db_url, 3, base, host="dn-2", template=8)
    text = ok(viewer, "/logs/search", host="dn-1")
    rows = re.findall(r'<tr data-id="(\d+)">', text)
    assert len(rows) == 100
    assert [int(r) for r in rows] == sorted((int(r) for r in rows), reverse=True)  # newest first
    assert "blk_129 &lt;tag&gt;" in text  # escaped, the newest line first
    more = re.search(r'id="lines-more".*?href="([^"]+)"', text, re.S)
    assert more, "no load-more link"
    href = html.unescape(more.group(1))
    assert href == f"/logs/search?host=dn-1&before={rows[-1]}"
    fragment = viewer.get(href, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert len(re.findall(r'<tr data-id="', fragment.text)) == 30
    assert "lines-more" not in fragment.text  # nothing older
    assert 'data-tail-query="host=dn-1"' in text
    assert 'id="tail-toggle"' in text
    assert " checked" not in text
    tailing = ok(viewer, "/logs/search", host="dn-1", tail="1")
    assert 'id="tail-toggle" checked' in tailing

    other = ok(viewer, "/logs/search", template=8, q="blk_1")
    assert len(re.findall(r'<tr data-id="', other)) == 1  # dn-2 wrote blk_0..2 with template 8
    assert "dn-2" in other
    since = (base - timedelta(seconds=100)).isoformat()
    until = (base - timedelta(seconds=60)).isoformat()
    window = ok(viewer, "/logs/search", host="dn-1", **{"from": since, "to": until})
    assert len(re.findall(r'<tr data-id="', window)) == 40  # blk_30 (100 s) to blk_69 (61 s)
    assert window.index("blk_69 ") < window.index("blk_30 ")
    assert "disabled" in window  # no tail with an end time
    assert "No line matches these filters" in ok(viewer, "/logs/search", host="nobody")
    assert viewer.get("/logs/search", params={"template": "0"}).status_code == 422
