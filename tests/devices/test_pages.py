"""The device and repair pages over HTTP, as a browser drives them (session cookie, CSRF field)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.devices.enums import Lifecycle
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import RepairConfig
from fleetops.devices.states import transition
from fleetops.models import Host
from tests.dashboard.test_pages import csrf_of, log_in
from tests.findings.factory import seed as seed_findings
from tests.fixtures.app import PASSWORD, Tokens
from tests.fixtures.browser import load_fleet

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>")
_HANDLER = re.compile(r"\son[a-z]+=")
_COLUMN = re.compile(r'<section id="col-([a-z_]+)"')
OPS = AuditContext(actor="ops")
L = Lifecycle


@dataclass(frozen=True)
class Seeded:
    finding: int
    ticket: int


@pytest.fixture
def seeded(client: TestClient, tokens: Tokens, db_url: str) -> Seeded:
    """20 demo hosts in 2 racks (dn-0001..0010 in r001, wk-0011..0020 in r002): dn-0001 isolated
    on a finding with its repair ticket open, dn-0002 suspect, wk-0012 in repair (override)."""
    load_fleet(db_url, hosts=20, racks=2)
    [finding] = seed_findings(db_url, {"entity": "dn-0001", "title": "dn-0001: disk I/O errors"})
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        hosts = {h.hostname: h for h in session.scalars(select(Host))}
        for to in (L.SUSPECT, L.DRAINING, L.ISOLATED):
            transition(
                session, hosts["dn-0001"], to, ctx=OPS, reason="disk errors", evidence=[finding]
            )
        ticket = repairs.open_ticket(
            session,
            OPS,
            hosts["dn-0001"],
            symptoms="disk I/O errors on sdb",
            evidence=[finding],
            config=RepairConfig(),
        )
        transition(session, hosts["dn-0002"], L.SUSPECT, ctx=OPS, reason="ECC warnings")
        transition(
            session, hosts["wk-0012"], L.IN_REPAIR, ctx=OPS, reason="PSU smoke", override=True
        )
        ticket_id = ticket.id
    engine.dispose()
    return Seeded(finding, ticket_id)


def as_user(client: TestClient, username: str) -> None:
    client.cookies.clear()
    assert log_in(client, username, PASSWORD).status_code == 303


def count_of(page: str, state: str) -> int:
    found = re.search(rf'id="col-{state}".*?data-count>(\d+)<', page, re.S)
    assert found, f"no column {state}"
    return int(found.group(1))


def clean(page: str) -> None:
    """No inline script or handler (the CSP would block them), and the page is complete."""
    assert _INLINE_SCRIPT.findall(page) == []
    assert not _HANDLER.search(page)
    assert page.rstrip().endswith("</html>")


def post_forms(page: str) -> list[str]:
    return [a for a in re.findall(r'<form method="post" action="([^"]+)"', page) if a != "/logout"]


def test_viewer_sees_the_board_timeline_and_queue(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    board = client.get("/devices")
    assert board.status_code == 200
    text = board.text
    clean(text)
    assert _COLUMN.findall(text) == [s.value for s in Lifecycle]
    counts = {s.value: count_of(text, s.value) for s in Lifecycle}
    assert counts == {  # dn-0008 was imported suspect: the inventory's state is the device's
        "in_service": 16,
        "suspect": 2,
        "draining": 0,
        "isolated": 1,
        "in_repair": 1,
        "verifying": 0,
        "provisioning": 0,
        "retired": 0,
    }
    assert "4 more &rarr;" in text  # in service: 12 shown of 16
    assert 'href="/devices?state=in_service"' in text
    assert 'href="/devices/dn-0002"' in text
    assert "ECC warnings" in text
    assert '<span class="chip">r001</span>' in text
    assert 'id="oos-devices">2<' in text  # dn-0001 isolated, wk-0012 in repair
    assert "of 20 devices · 10%" in text
    assert 'id="open-tickets">1<' in text
    assert 'data-fragment="/devices?fragment=1"' in text
    assert '<script src="/static/devices.js" defer></script>' in text
    assert post_forms(text) == []

    rack = client.get("/devices", params={"selector": "rack=r002"}).text
    assert (count_of(rack, "in_service"), count_of(rack, "suspect")) == (9, 0)
    assert count_of(rack, "in_repair") == 1
    assert "of 10 devices · 10%" in rack
    assert 'data-fragment="/devices?selector=rack%3Dr002&amp;fragment=1"' in rack
    fragment = client.get("/devices", params={"selector": "rack=r002", "fragment": "1"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert count_of(fragment.text, "in_repair") == 1
    bad = client.get("/devices", params={"selector": "rack="})
    assert bad.status_code == 400
    assert "Bad selector." in bad.text

    listing = client.get("/devices", params={"state": "in_service"}).text
    clean(listing)
    assert len(re.findall(r'<td><a class="mono" href="/devices/', listing)) == 16
    assert "dn-0003" in listing
    assert "wk-0012" not in listing

    timeline = client.get("/devices/dn-0001")
    assert timeline.status_code == 200
    page = timeline.text
    clean(page)
    moves = re.findall(r'<li class="timeline-step" data-to="([a-z_]+)">', page)
    assert moves == ["isolated", "draining", "suspect"]  # newest first
    assert page.count(f'href="/findings/{seeded.finding}"') == 3  # one per move
    assert f'href="/repairs/{seeded.ticket}"' in page
    assert "disk errors" in page
    assert post_forms(page) == []
    assert "operators move devices" in page
    assert "override" in client.get("/devices/wk-0012").text

    queue = client.get("/repairs")
    assert queue.status_code == 200
    clean(queue.text)
    live = queue.text.split('id="live-tickets"')[1].split("</table>")[0]
    assert f'href="/repairs/{seeded.ticket}"' in live
    assert 'href="/devices/dn-0001"' in live
    assert re.search(r'<span class="badge ok sla">due in [78]\.\d h</span>', live)  # reboot: 8 h
    assert "No ticket closed yet." in queue.text
    assert "No ticket matches" in client.get("/repairs", params={"overdue": "1"}).text
    only_open = client.get("/repairs", params={"status": "open"}).text
    assert f'href="/repairs/{seeded.ticket}"' in only_open
    assert f'href="/repairs/{seeded.ticket}"' not in client.get("/repairs?status=verified").text

    ticket = client.get(f"/repairs/{seeded.ticket}")
    assert ticket.status_code == 200
    clean(ticket.text)
    assert "disk I/O errors on sdb" in ticket.text
    assert f'href="/findings/{seeded.finding}"' in ticket.text
    assert post_forms(ticket.text) == []

    figures = client.get("/repairs/metrics", params={"hours": 6})
    assert figures.status_code == 200
    clean(figures.text)
    assert 'data-url="/api/v1/repairs/metrics?hours=6"' in figures.text
    assert '<script src="/static/vendor/echarts-6.1.0.min.js" defer></script>' in figures.text
    assert "Now 2 of 20 devices (10%)" in figures.text


def test_unknown_host_ticket_or_filter(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    assert client.get("/devices/nope").status_code == 404
    assert "host &#39;nope&#39; not found" in client.get("/devices/nope").text
    assert client.get("/repairs/999").status_code == 404
    assert client.get("/devices", params={"state": "broken"}).status_code == 400
    assert client.get("/repairs", params={"status": "lost"}).status_code == 400
    client.cookies.clear()
    for path in ("/devices", "/devices/dn-0001", "/repairs", f"/repairs/{seeded.ticket}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def move(client: TestClient, host: str, csrf: str, **fields: str) -> httpx.Response:
    data = {"csrf": csrf, "to": "", "reason": "", "evidence": "", **fields}
    response: httpx.Response = client.post(
        f"/devices/{host}/transition", data=data, follow_redirects=False
    )
    return response


def test_operator_moves_a_device_from_its_page(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "operator")
    page = client.get("/devices/dn-0002")
    assert post_forms(page.text) == ["/devices/dn-0002/transition"]
    options = re.findall(r'<option value="([a-z_]*)"', page.text.split('name="to"')[1])
    assert options[:3] == ["", "in_service", "draining"]  # then the override-only ones
    assert len(options) == len(Lifecycle)  # all but the current state, and the placeholder
    csrf = csrf_of(page)

    moved = move(
        client, "dn-0002", csrf, to="draining", reason="drain it", evidence=str(seeded.finding)
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == "/devices/dn-0002?done=moved"
    after = client.get(moved.headers["location"]).text
    assert "Moved: the transition is in the history" in after
    assert re.findall(r'data-to="([a-z_]+)"', after) == ["draining", "suspect"]
    assert f'href="/findings/{seeded.finding}"' in after

    refused = move(client, "dn-0002", csrf, to="in_service", reason="false alarm")
    assert refused.status_code == 409
    assert (
        "AllowedStep: dn-0002 is draining; it cannot become in_service "
        "(next: suspect, isolated; an operator override may jump)"
    ) in html.unescape(refused.text)
    assert ">false alarm</textarea>" in refused.text  # what was typed is kept
    assert '<option value="in_service" selected>' in refused.text
    blank = move(client, "dn-0002", csrf, to="isolated", reason="  ")
    assert blank.status_code == 409
    assert "ReasonRequired: every transition needs a reason" in blank.text
    typo = move(client, "dn-0002", csrf, to="isolated", reason="drained", evidence="12x")
    assert typo.status_code == 400
    assert "is not a finding id" in typo.text
    missing = move(client, "dn-0002", csrf, to="isolated", reason="drained", evidence="4242")
    assert (missing.status_code, "EvidenceExists" in missing.text) == (409, True)
    unchosen = move(client, "dn-0002", csrf, reason="drained")
    assert (unchosen.status_code, "choose the state to move to" in unchosen.text) == (400, True)
    jump = move(client, "dn-0002", csrf, to="in_service", reason="false alarm", override="1")
    assert jump.status_code == 303
    back = client.get("/devices/dn-0002").text
    assert re.findall(r'data-to="([a-z_]+)"', back)[0] == "in_service"
    assert 'class="badge bad override"' in back
    assert (
        client.post(
            "/devices/nope/transition", data={"csrf": csrf, "to": "suspect", "reason": "r"}
        ).status_code
        == 404
    )

    forged = move(client, "dn-0002", "not-the-token", to="suspect", reason="r")
    assert (forged.status_code, "CSRF check failed" in forged.text) == (403, True)
    as_user(client, "viewer")
    viewer_csrf = csrf_of(client.get("/devices"))
    denied = move(client, "dn-0002", viewer_csrf, to="suspect", reason="r")
    assert denied.status_code == 403
    assert "moving a device needs the operator role; you act as viewer" in denied.text


def update(client: TestClient, ticket: int, csrf: str, **fields: str) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/repairs/{ticket}/update", data={"csrf": csrf, **fields}, follow_redirects=False
    )
    return response


def test_operator_updates_a_ticket_from_its_page(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "operator")
    url = f"/repairs/{seeded.ticket}"
    page = client.get(url)
    assert post_forms(page.text) == [f"{url}/update"]
    options = re.findall(r'<option value="([a-z_]*)"', page.text.split('name="status"')[1])
    assert options[:5] == ["", "diagnosing", "waiting_parts", "repaired", "failed"]
    csrf = csrf_of(page)

    done = update(
        client, seeded.ticket, csrf, status="diagnosing", note="reseated sdb", vendor="Dell"
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"{url}?done=updated"
    after = client.get(done.headers["location"]).text
    assert "Ticket updated" in after
    assert '<span id="ticket-status"><span class="badge info">diagnosing</span>' in after
    assert "operator] reseated sdb" in after
    assert "<dt>Vendor</dt><dd>Dell</dd>" in after
    # The device went from isolated into repair with it.
    assert re.findall(r'data-to="([a-z_]+)"', client.get("/devices/dn-0001").text)[0] == (
        "in_repair"
    )

    refused = update(client, seeded.ticket, csrf, status="verified", note="looks fine")
    assert refused.status_code == 409
    assert "cannot become verified" in refused.text
    assert ">looks fine</textarea>" in refused.text
    nothing = update(client, seeded.ticket, csrf, status="", vendor="Dell")
    assert nothing.status_code == 400
    assert "nothing to update" in nothing.text
    assert client.post("/repairs/999/update", data={"csrf": csrf, "note": "x"}).status_code == 404

    repaired = update(client, seeded.ticket, csrf, status="repaired", rma_number="RMA-77")
    assert repaired.status_code == 303
    device = client.get("/devices/dn-0001").text
    assert re.findall(r'data-to="([a-z_]+)"', device)[0] == "verifying"
    assert re.search(r'<a href="/changes/\d+" id="device-change">', device)

    as_user(client, "viewer")
    denied = update(client, seeded.ticket, csrf_of(client.get(url)), note="x")
    assert denied.status_code == 403
    assert "updating a ticket needs the operator role" in denied.text
