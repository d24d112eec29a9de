"""The findings pages through HTTP, as a browser drives them (session cookie, CSRF field)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from fleetops.findings.pages import evidence_view
from tests.dashboard.test_pages import csrf_of, log_in
from tests.findings.factory import T0, lines_ref, seed
from tests.fixtures.app import PASSWORD, Tokens

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>")
_HREF = re.compile(r'href="([^"]*)"')
WINDOW = {
    "type": "window",
    "metric": "disk_latency_p99",
    "entity": "h001",
    "from": "2026-11-26T11:50:00+00:00",
    "to": "2026-11-26T12:10:00+00:00",
}


def as_user(client: TestClient, username: str) -> None:
    client.cookies.clear()
    assert log_in(client, username, PASSWORD).status_code == 303


def hrefs(response: httpx.Response) -> list[str]:
    return [html.unescape(h) for h in _HREF.findall(response.text)]


@pytest.fixture
def ids(client: TestClient, tokens: Tokens, db_url: str) -> list[int]:
    """A critical disk finding with every kind of evidence ref, and a later info link flap."""
    disk, flap = seed(
        db_url,
        {"severity": "critical", "details": {"errors": 12, "device": "sda"}},
        {
            "kind": "link_flap",
            "entity_type": "link",
            "entity": "sw1:eth1",
            "severity": "info",
            "title": "sw1:eth1 flaps",
            "now": T0 + timedelta(minutes=5),
        },
    )
    refs = [
        lines_ref(minute=1, template=None) | {"query": "I/O error"},
        WINDOW,
        {"type": "finding", "id": flap},
        {"type": "trace", "span": "abc123"},
    ]
    seed(db_url, {"severity": "critical", "evidence": refs, "now": T0 + timedelta(minutes=9)})
    return [disk, flap]


def test_list_shows_counts_filters_and_newest_first(client: TestClient, ids: list[int]) -> None:
    disk, flap = ids
    as_user(client, "viewer")
    listing = client.get("/findings")
    assert listing.status_code == 200
    text = listing.text
    assert text.index(f'href="/findings/{flap}"') < text.index(f'href="/findings/{disk}"')
    assert '<span class="badge bad">critical</span>' in text
    assert '<span class="badge info">info</span>' in text
    assert 'href="/hosts/h001"' in text  # a host entity links to its host page
    assert "sw1:eth1 flaps" in text
    assert '<p class="metric">2</p>' in text  # live findings
    assert "/findings/" + str(disk) + "/action" not in text  # viewers get no buttons
    assert _INLINE_SCRIPT.findall(text) == []
    assert not re.search(r"\son[a-z]+=", text)
    only_info = client.get("/findings?severity=info").text
    assert f'href="/findings/{flap}"' in only_info
    assert f'href="/findings/{disk}"' not in only_info
    assert f'href="/findings/{disk}"' in client.get("/findings?kind=disk_slow&status=open").text
    assert "No finding matches" in client.get("/findings?entity=nobody").text
    # The filter form sends empty values for "any".
    assert (
        f'href="/findings/{disk}"' in client.get("/findings?status=&severity=&kind=&entity=").text
    )
    unknown = client.get("/findings?status=closed")
    assert unknown.status_code == 422
    assert "status must be one of open | acknowledged | resolved" in unknown.text


def test_detail_links_every_evidence_ref(client: TestClient, ids: list[int]) -> None:
    disk, flap = ids
    as_user(client, "viewer")
    detail = client.get(f"/findings/{disk}")
    assert detail.status_code == 200
    links = hrefs(detail)
    assert (
        "/logs/search?host=h001&from=2026-11-26T12%3A01%3A00%2B00%3A00"
        "&to=2026-11-26T12%3A02%3A00%2B00%3A00&q=I%2FO+error"
    ) in links
    assert (
        "/logs/search?host=h001&from=2026-11-26T12%3A00%3A00%2B00%3A00"
        "&to=2026-11-26T12%3A01%3A00%2B00%3A00&template=7"
    ) in links
    assert (
        "/diagnosis/disk_latency_p99?entity=h001&from=2026-11-26T11%3A50%3A00%2B00%3A00"
        "&to=2026-11-26T12%3A10%3A00%2B00%3A00"
    ) in links
    assert f"/findings/{flap}" in links
    assert "&#34;span&#34;: &#34;abc123&#34;" in detail.text  # unknown types are shown as JSON
    assert "errors" in detail.text
    assert "sda" in detail.text
    assert f"/audit?entity_type=finding&entity_id={disk}" in links
    assert _INLINE_SCRIPT.findall(detail.text) == []
    assert client.get("/findings/999").status_code == 404


def test_pages_need_a_session(client: TestClient, ids: list[int]) -> None:
    client.cookies.clear()
    for path in ("/findings", f"/findings/{ids[0]}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def post_action(
    client: TestClient, finding_id: int, action: str, csrf: str, reason: str = "", back: str = ""
) -> httpx.Response:
    data = {"action": action, "reason": reason, "csrf": csrf, "back": back}
    response: httpx.Response = client.post(
        f"/findings/{finding_id}/action", data=data, follow_redirects=False
    )
    return response


def test_operators_ack_and_resolve_from_the_pages(client: TestClient, ids: list[int]) -> None:
    disk, flap = ids
    as_user(client, "operator")
    listing = client.get("/findings?severity=critical")
    assert f'action="/findings/{disk}/action"' in listing.text
    csrf = csrf_of(listing)
    acked = post_action(client, disk, "ack", csrf, back="/findings?severity=critical&done=resolve")
    assert acked.status_code == 303
    assert acked.headers["location"] == "/findings?severity=critical&done=ack"
    back = client.get(acked.headers["location"])
    assert "Acknowledged: the finding stays live" in back.text
    assert '<span class="badge warn">acknowledged</span>' in back.text

    refused = post_action(client, disk, "resolve", csrf, reason="  ")
    assert refused.status_code == 409
    assert "ReasonRequiredToResolveByHand: resolving finding" in refused.text
    resolved = post_action(
        client, disk, "resolve", csrf, reason="disk swapped", back="https://evil.example/"
    )
    assert resolved.headers["location"] == f"/findings/{disk}?done=resolve"
    page = client.get(resolved.headers["location"]).text
    assert "Resolved." in page
    assert "disk swapped" in page
    assert f'action="/findings/{disk}/action"' not in page  # nothing left to do
    again = post_action(client, disk, "ack", csrf)
    assert again.status_code == 409
    assert "ResolvedIsFinal" in again.text

    as_user(client, "viewer")
    viewer_csrf = csrf_of(client.get("/findings"))
    denied = post_action(client, flap, "ack", viewer_csrf)
    assert denied.status_code == 403
    assert "ack needs the operator role; you act as viewer" in denied.text
    as_user(client, "operator")
    forged = post_action(client, flap, "ack", "not-the-token")
    assert forged.status_code == 403
    assert "CSRF check failed" in forged.text


def test_malformed_refs_are_shown_as_json_not_links() -> None:
    for ref in (
        {"type": "lines", "host": "h1"},  # no time span
        {"type": "window", "metric": "m", "from": "a", "to": "b"},  # no entity
        {"type": "finding", "id": True},
        {"type": "finding", "id": "../admin"},
        ["not", "a", "mapping"],
    ):
        view = evidence_view(ref)
        assert view.href is None, ref
        assert view.raw
    assert evidence_view({"type": "finding", "id": "12"}).href == "/findings/12"
    slashed = evidence_view(WINDOW | {"metric": "a/b?c"})
    assert slashed.href is not None
    assert slashed.href.startswith("/diagnosis/a%2Fb%3Fc?entity=h001")
