"""The web UI through HTTP: login, cookies, CSRF, access control and the inventory/audit pages.

These log in as `admin`, whom the app bootstraps with the test password (see conftest).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.dashboard.login import safe_next
from fleetops.dashboard.render import ago
from fleetops.inventory.document import InventoryDoc
from tests.dashboard.conftest import MAX_FAILURES
from tests.fixtures.app import PASSWORD

PAGES = ["/", "/hosts", "/hosts/dn-0001", "/racks", "/audit"]
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
_HOST_LINK = re.compile(r'<td><a class="mono" href="/hosts/([^"]+)">')


def csrf_of(response: httpx.Response) -> str:
    found = _CSRF.search(response.text)
    assert found, "no CSRF field in the page"
    return found.group(1)


def log_in(
    client: TestClient, username: str = "admin", password: str = PASSWORD, next: str = "/"
) -> httpx.Response:
    form = client.get("/login")
    data = {"username": username, "password": password, "csrf": csrf_of(form), "next": next}
    response: httpx.Response = client.post("/login", data=data, follow_redirects=False)
    return response


def set_cookie(response: httpx.Response, name: str) -> str:
    """The Set-Cookie header for `name`, lower-cased for attribute checks."""
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert headers, f"no Set-Cookie for {name}"
    return headers[0].lower()


def host_rows(html: str) -> list[str]:
    return _HOST_LINK.findall(html)


def login_audit(engine: Engine) -> set[tuple[str, str]]:
    """(username, outcome) of every recorded login attempt."""
    with Session(engine) as session:
        return {(r.entity_id, r.outcome) for r in session.scalars(audit.query(action="auth.login"))}


# --- login and session ------------------------------------------------------------------------


def test_login_page_renders_with_csrf_cookie(client: TestClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    assert '<form method="post" action="/login"' in response.text
    assert csrf_of(response)
    cookie = set_cookie(response, "fleetops_csrf")
    assert "httponly" in cookie
    assert "path=/login" in cookie


def test_wrong_password_is_refused_and_audited(client: TestClient, engine: Engine) -> None:
    response = log_in(client, "admin", "not-the-password")
    assert response.status_code == 401
    assert "invalid username or password" in response.text
    assert 'value="admin"' in response.text  # the username is kept, the password is not
    assert "fleetops_session" not in response.headers.get("set-cookie", "")
    assert ("admin", "denied") in login_audit(engine)


def test_login_sets_a_protected_session_cookie(client: TestClient, engine: Engine) -> None:
    response = log_in(client, next="/racks")
    assert response.status_code == 303
    assert response.headers["location"] == "/racks"
    cookie = set_cookie(response, "fleetops_session")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie
    assert "secure" not in cookie
    page = client.get("/")
    assert page.status_code == 200
    assert '<span class="who"' in page.text
    assert ("admin", "ok") in login_audit(engine)


def test_session_cookie_is_secure_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        response = log_in(client)
        assert response.status_code == 303
        assert "secure" in set_cookie(response, "fleetops_session")
        assert client.get("/hosts").status_code == 200


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/hosts?selector=rack%3Dr001", "/hosts?selector=rack%3Dr001"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("hosts", "/"),
        ("/login", "/"),
        ("/a\r\nLocation: x", "/"),
        ("", "/"),
    ],
)
def test_next_only_stays_on_this_site(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_login_never_redirects_off_site(client: TestClient) -> None:
    response = log_in(client, next="//evil.example/")
    assert response.headers["location"] == "/"


def test_lockout_refuses_even_the_right_password(client: TestClient, engine: Engine) -> None:
    for _ in range(MAX_FAILURES):
        assert log_in(client, "admin", "wrong-password-123").status_code == 401
    for _ in range(3):
        response = log_in(client, "admin", PASSWORD)
        assert response.status_code == 429
        assert "locked" in response.text
        assert "fleetops_session" not in response.headers.get("set-cookie", "")
    app: FastAPI = client.app  # type: ignore[assignment]
    app.state.refusals.flush(everything=True)
    with Session(engine) as session:
        rows = session.scalars(audit.query(action="auth.login", outcome="locked")).all()
    # The failure that locked, then the three refusals while locked: the first as it happened,
    # the others counted (in one row, or two if a minute ended in between).
    assert sum((r.after or {}).get("repeats", 1) for r in rows) == 4
    assert any((r.after or {}).get("repeats") for r in rows)


# --- CSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "forged", "gefälscht"])
def test_login_without_a_valid_csrf_token_is_forbidden(
    client: TestClient, token: str | None
) -> None:
    client.get("/login")
    data = {"username": "admin", "password": PASSWORD}
    if token is not None:
        data["csrf"] = token
    response = client.post("/login", data=data, follow_redirects=False)
    assert response.status_code == 403
    assert "CSRF check failed" in response.text
    assert "fleetops_session" not in response.headers.get("set-cookie", "")


def test_login_csrf_token_is_bound_to_its_cookie(client: TestClient) -> None:
    token = csrf_of(client.get("/login"))
    client.cookies.clear()  # a cross-site page has the field's value at best, not our cookie
    data = {"username": "admin", "password": PASSWORD, "csrf": token}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 403


def test_logout_requires_the_session_csrf_token(client: TestClient, engine: Engine) -> None:
    log_in(client)
    page = client.get("/")
    assert client.post("/logout", follow_redirects=False).status_code == 403
    response = client.post("/logout", data={"csrf": "gefälscht"}, follow_redirects=False)
    assert response.status_code == 403
    assert "CSRF check failed" in response.text
    assert client.get("/", follow_redirects=False).status_code == 200  # still logged in
    response = client.post("/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert response.status_code == 303
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 303
    with Session(engine) as session:
        logouts = list(session.scalars(audit.query(action="auth.logout")))
    assert [(r.actor, r.entity_id) for r in logouts] == [("admin", "admin")]


# --- access -----------------------------------------------------------------------------------


def test_pages_send_anonymous_visitors_to_login(client: TestClient) -> None:
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=/"), path
    response = client.get("/hosts?selector=rack=r001", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/hosts%3Fselector%3Drack%3Dr001"


def test_htmx_requests_are_redirected_by_htmx(client: TestClient) -> None:
    response = client.get("/hosts", headers={"HX-Request": "true", "HX-Target": "results"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/hosts"


def test_pages_carry_the_csp_and_no_inline_script(client: TestClient, fleet: InventoryDoc) -> None:
    log_in(client)
    for path in [*PAGES, "/login"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", response.text) == [], path
        assert not re.search(r"\son[a-z]+=", response.text), path


# --- inventory pages --------------------------------------------------------------------------


def test_selector_shows_exactly_that_racks_hosts(client: TestClient, fleet: InventoryDoc) -> None:
    log_in(client)
    response = client.get("/hosts", params={"selector": "rack=r001"})
    assert response.status_code == 200
    expected = sorted(h.hostname for h in fleet.hosts if h.rack == "r001")
    assert host_rows(response.text) == expected
    assert f"{len(expected)} matches" in response.text


def test_bad_selector_is_explained_above_the_table(client: TestClient, fleet: InventoryDoc) -> None:
    log_in(client)
    response = client.get("/hosts", params={"selector": "rack=(r001"})
    assert response.status_code == 400
    assert "Bad selector" in response.text
    assert "selector error at column" in response.text
    assert host_rows(response.text) == []
    assert 'value="rack=(r001"' in response.text  # kept in the form for fixing


def test_hosts_sort_and_paginate(client: TestClient, fleet: InventoryDoc) -> None:
    log_in(client)
    names = sorted(h.hostname for h in fleet.hosts)
    response = client.get("/hosts", params={"sort": "-hostname", "limit": 3, "offset": 3})
    assert host_rows(response.text) == names[::-1][3:6]
    assert 'href="/hosts?sort=-hostname&amp;limit=3"' in response.text  # previous page
    assert "offset=6" in response.text  # next page
    assert 'aria-sort="descending"' in response.text


def test_htmx_gets_only_the_results_fragment(client: TestClient, fleet: InventoryDoc) -> None:
    log_in(client)
    headers = {"HX-Request": "true", "HX-Target": "results"}
    response = client.get("/hosts", params={"selector": "rack=r002"}, headers=headers)
    assert response.text.lstrip().startswith('<div id="results"')
    assert "<html" not in response.text
    assert host_rows(response.text) == sorted(h.hostname for h in fleet.hosts if h.rack == "r002")


def test_host_detail_shows_fields_links_and_history(
    client: TestClient, fleet: InventoryDoc
) -> None:
    log_in(client)
    host = fleet.hosts[0]
    response = client.get(f"/hosts/{host.hostname}")
    assert response.status_code == 200
    text = response.text
    for value in (host.hostname, host.address, host.model, host.cluster, *host.labels.values()):
        assert value
        assert value in text
    assert f'href="/hosts?selector=rack%3D{host.rack}"' in text
    assert "host.create" in text
    assert client.get("/hosts/no-such-host").status_code == 404


def test_racks_are_grouped_and_link_to_their_hosts(client: TestClient, fleet: InventoryDoc) -> None:
    log_in(client)
    response = client.get("/racks")
    assert response.status_code == 200
    for rack in fleet.racks:
        assert f'href="/hosts?selector=rack%3D{rack.name}"' in response.text
    for dc in {r.datacenter for r in fleet.racks}:
        assert f'id="dc-{dc}"' in response.text


def test_overview_counts_hosts(client: TestClient, fleet: InventoryDoc) -> None:
    log_in(client)
    response = client.get("/")
    assert f'<a href="/hosts">{len(fleet.hosts)}</a>' in response.text
    assert '<a href="/hosts?selector=state%3Dsuspect">' in response.text  # drill-down by state


def test_audit_page_filters_and_verifies(client: TestClient, fleet: InventoryDoc) -> None:
    log_in(client)
    response = client.get("/audit", params={"action": "host.*", "limit": 25})
    assert response.status_code == 200
    assert f"{len(fleet.hosts)} records" in response.text
    assert "auth.login" not in response.text.split("<tbody>")[1]
    verified = client.get("/audit", params={"verify": "true"})
    assert "Chain verified" in verified.text


def test_relative_times_read_naturally() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert ago(now - timedelta(seconds=2), now) == "just now"
    assert ago(now - timedelta(seconds=42), now) == "42 s ago"
    assert ago(now - timedelta(minutes=3, seconds=5), now) == "3 min ago"
    assert ago(now - timedelta(hours=5), now) == "5 h ago"
    assert ago(now + timedelta(days=2), now) == "in 2 d"
    assert ago(None) == "never"
