"""The change pages through HTTP: list, detail, votes and controls from forms, SSE, step output.

Changes are submitted through the API as the developer and run by the real engine on simulated
hosts; the pages are read and driven as a browser would (session cookie, CSRF field).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import cast

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from fleetops.auth.dependencies import Principal
from fleetops.auth.roles import Role
from fleetops.changes.pages import allowed_actions, progress_events
from fleetops.changes.schemas import ChangeRead
from fleetops.models import utcnow
from tests.changes.fleet import fleet_doc, load_fleet, wait_for
from tests.dashboard.test_pages import csrf_of, log_in
from tests.fixtures.app import PASSWORD, Tokens

ECHO_WORKFLOW = """
name: echo
version: 1
description: Say hello on each host, two hosts at a time.
stages:
  - name: greet
    steps:
      - operation: shell
        params: {command: "echo hello from {{ host.hostname }}"}
    strategy: {batch: 2}
"""
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>")


@pytest.fixture
def ui(engine_client: TestClient, users: Tokens, db_url: str) -> TestClient:
    """The engine app with a fleet and a registered workflow."""
    load_fleet(db_url, fleet_doc(40, 4, executor="simulated"))
    registered = engine_client.post(
        "/api/v1/workflows", json={"source": ECHO_WORKFLOW}, headers=users.headers("developer")
    )
    assert registered.status_code == 201, registered.text
    return engine_client


def submit(client: TestClient, users: Tokens, selector: str = "h00[1-4]") -> int:
    """Submit the echo workflow as the developer: medium risk, one approval needed."""
    body = {
        "workflow": "echo",
        "selector": selector,
        "title": "Say hello",
        "reason": "prove the fleet answers",
    }
    response = client.post("/api/v1/changes", json=body, headers=users.headers("developer"))
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "pending_approval"
    change_id: int = response.json()["id"]
    return change_id


def as_user(client: TestClient, username: str) -> None:
    client.cookies.clear()
    assert log_in(client, username, PASSWORD).status_code == 303


def state_of(client: TestClient, users: Tokens, change_id: int) -> str:
    response = client.get(f"/api/v1/changes/{change_id}", headers=users.headers("viewer"))
    state: str = response.json()["state"]
    return state


def post_action(
    client: TestClient, change_id: int, action: str, csrf: str | None, comment: str = ""
) -> httpx.Response:
    data = {"action": action, "comment": comment}
    if csrf is not None:
        data["csrf"] = csrf
    response: httpx.Response = client.post(
        f"/changes/{change_id}/action", data=data, follow_redirects=False
    )
    return response


def test_list_and_detail_show_a_real_change(ui: TestClient, users: Tokens) -> None:
    change_id = submit(ui, users)
    as_user(ui, "viewer")
    listing = ui.get("/changes")
    assert listing.status_code == 200
    assert f'href="/changes/{change_id}"' in listing.text
    assert "pending approval" in listing.text
    assert 'title="0 of 1 approvals"' in listing.text
    assert f'href="/changes/{change_id}"' in ui.get("/changes?state=pending_approval").text
    assert f'href="/changes/{change_id}"' not in ui.get("/changes?state=succeeded").text
    assert "No change matches" in ui.get("/changes?requester=nobody").text

    detail = ui.get(f"/changes/{change_id}")
    assert detail.status_code == 200
    text = detail.text
    for expected in (
        "Say hello",
        "prove the fleet answers",
        'href="/workflows/echo?version=1">echo@1</a>',
        'href="/hosts?selector=h00%5B1-4%5D"',
        f'href="/changes/{change_id}/hosts/h001"',
        f'data-events="/changes/{change_id}/events"',
        "medium risk",
    ):
        assert expected in text, expected
    assert _INLINE_SCRIPT.findall(text) == []
    assert not re.search(r"\son[a-z]+=", text)
    workflow = ui.get("/workflows/echo")
    assert "echo hello from {{ host.hostname }}" in workflow.text
    assert 'href="/workflows/echo"' in ui.get("/workflows").text
    assert ui.get("/changes/999999").status_code == 404


def test_pages_and_events_need_a_session(ui: TestClient, users: Tokens) -> None:
    change_id = submit(ui, users)
    ui.cookies.clear()
    for path in ("/changes", f"/changes/{change_id}", f"/changes/{change_id}/events"):
        response = ui.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path


def test_vote_buttons_only_for_an_operator_who_did_not_request_it(
    ui: TestClient, users: Tokens
) -> None:
    change_id = submit(ui, users)
    for user, shown in (
        ("operator", True),
        ("admin", True),
        ("developer", False),
        ("viewer", False),
    ):
        as_user(ui, user)
        text = ui.get(f"/changes/{change_id}").text
        assert ('value="approve"' in text) is shown, user
        assert ('value="reject"' in text) is shown, user
    as_user(ui, "developer")
    assert "You requested this change" in ui.get(f"/changes/{change_id}").text


def test_approving_from_the_page_runs_the_change(ui: TestClient, users: Tokens) -> None:
    change_id = submit(ui, users)
    as_user(ui, "operator")
    page = ui.get(f"/changes/{change_id}")
    for csrf in (None, "forged"):
        refused = post_action(ui, change_id, "approve", csrf)
        assert refused.status_code == 403
        assert "CSRF check failed" in refused.text
    assert state_of(ui, users, change_id) == "pending_approval"

    done = post_action(ui, change_id, "approve", csrf_of(page), comment="looks right")
    assert done.status_code == 303
    assert done.headers["location"] == f"/changes/{change_id}?done=approve"
    assert "Your approval is recorded" in ui.get(done.headers["location"]).text
    wait_for(lambda: state_of(ui, users, change_id) == "succeeded", what="the change to succeed")

    text = ui.get(f"/changes/{change_id}").text
    assert "looks right" in text
    assert 'value="approve"' not in text
    host = ui.get(f"/changes/{change_id}/hosts/h002")
    assert host.status_code == 200
    assert "hello from" in host.text
    assert "h002" in host.text
    assert ui.get(f"/changes/{change_id}/hosts/h040").status_code == 404  # not a target


def test_requester_vote_is_refused_on_the_page_and_audited(ui: TestClient, users: Tokens) -> None:
    change_id = submit(ui, users)
    as_user(ui, "developer")
    page = ui.get(f"/changes/{change_id}")
    refused = post_action(ui, change_id, "approve", csrf_of(page), comment="mine, trust me")
    assert refused.status_code == 409
    assert "RequesterCannotApprove" in refused.text
    assert 'class="alert bad"' in refused.text
    assert ">mine, trust me</textarea>" in refused.text  # kept for a next try
    assert 'value="approve"' not in refused.text
    audit = ui.get(
        "/api/v1/audit", params={"action": "change.approve"}, headers=users.headers("admin")
    ).json()["items"]
    assert [(r["actor"], r["outcome"]) for r in audit] == [("developer", "refused")]
    assert state_of(ui, users, change_id) == "pending_approval"


def test_requester_may_cancel_and_a_stale_form_shows_the_conflict(
    ui: TestClient, users: Tokens
) -> None:
    change_id = submit(ui, users)
    as_user(ui, "developer")
    page = ui.get(f"/changes/{change_id}")
    assert 'value="cancel"' in page.text
    assert post_action(ui, change_id, "cancel", csrf_of(page)).status_code == 303
    assert state_of(ui, users, change_id) == "cancelled"
    again = post_action(ui, change_id, "cancel", csrf_of(page), comment="twice")
    assert again.status_code == 409
    assert "cannot become cancelled" in again.text
    pause = post_action(ui, change_id, "pause", csrf_of(page))
    assert pause.status_code == 403
    assert "needs the operator role" in pause.text


def read_event(response: httpx.Response) -> dict[str, object]:
    """The first `progress` event's data from an open SSE response."""
    event = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "progress":
            data: dict[str, object] = json.loads(line.removeprefix("data: "))
            return data
    raise AssertionError("the stream ended before a progress event")


def test_events_stream_the_change_state(ui: TestClient, users: Tokens) -> None:
    change_id = submit(ui, users)
    as_user(ui, "viewer")
    with ui.stream("GET", f"/changes/{change_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = read_event(response)
    assert data["state"] == "pending_approval"
    assert data["terminal"] is False
    assert data["hosts_by_state"] == {"pending": 4}

    approved = ui.post(
        f"/api/v1/changes/{change_id}/approve", json={}, headers=users.headers("operator")
    )
    assert approved.status_code == 200
    wait_for(lambda: state_of(ui, users, change_id) == "succeeded", what="the change to succeed")
    with ui.stream("GET", f"/changes/{change_id}/events") as response:
        body = response.read().decode()  # a finished change: one event, then the stream ends
    assert body.count("event: progress") == 1
    assert '"terminal": true' in body
    assert '"succeeded": 4' in body
    fragment = ui.get(f"/changes/{change_id}/progress")
    assert fragment.text.lstrip().startswith('<span id="change-state" data-live')
    assert "<html" not in fragment.text


def test_a_quiet_stream_sends_keep_alives(ui: TestClient, users: Tokens) -> None:
    change_id = submit(ui, users)
    sessions = cast(FastAPI, ui.app).state.read_sessions

    class Connected:
        async def is_disconnected(self) -> bool:
            return False

    async def first(n: int) -> list[str]:
        stream = progress_events(
            cast(Request, Connected()), sessions, change_id, poll=0.01, keepalive=0.03
        )
        out: list[str] = []
        async for chunk in stream:
            out.append(chunk)
            if len(out) == n:
                break
        await stream.aclose()
        return out

    chunks = asyncio.run(first(3))
    assert chunks[0].startswith("id: 1\nevent: progress\ndata: ")
    assert chunks[1:] == [": keep-alive\n\n", ": keep-alive\n\n"]


def _change(state: str, *, requester: str = "developer", failed: int = 0) -> ChangeRead:
    return ChangeRead(
        id=1,
        title="t",
        reason="",
        workflow="echo",
        workflow_version=1,
        selector="h001",
        params={},
        host_count=1,
        risk="medium",
        approvals_required=1,
        approvals=0,
        state=state,
        status="",
        requester=requester,
        kind="workflow",
        emergency=False,
        window_start=None,
        window_end=None,
        stage_index=0,
        created_at=utcnow(),
        started_at=None,
        finished_at=None,
        hosts_by_state={"failed": failed} if failed else {},
    )


@pytest.mark.parametrize(
    ("state", "role", "username", "failed", "expected"),
    [
        ("pending_approval", Role.OPERATOR, "olga", 0, ["approve", "reject", "cancel"]),
        ("pending_approval", Role.OPERATOR, "developer", 0, ["cancel"]),  # own change
        ("pending_approval", Role.DEVELOPER, "developer", 0, ["cancel"]),
        ("pending_approval", Role.VIEWER, "vera", 0, []),
        ("running", Role.OPERATOR, "olga", 0, ["pause", "cancel", "abort"]),
        ("paused", Role.OPERATOR, "olga", 0, ["resume", "cancel", "abort"]),
        ("failed", Role.OPERATOR, "olga", 2, ["retry"]),
        ("failed", Role.OPERATOR, "olga", 0, []),
        ("succeeded", Role.ADMIN, "ada", 0, []),
    ],
)
def test_allowed_actions_follow_roles_and_states(
    state: str, role: Role, username: str, failed: int, expected: list[str]
) -> None:
    who = Principal(user_id=1, username=username, role=role, via="session")
    change = _change(state, failed=failed)
    assert allowed_actions(change, who, voted=False) == expected
    if "approve" in expected:
        assert "approve" not in allowed_actions(change, who, voted=True)


def test_the_approver_sees_the_digest_and_what_changed_since_the_last_version(
    ui: TestClient, users: Tokens
) -> None:
    v2 = ECHO_WORKFLOW.replace("version: 1", "version: 2").replace("hello from", "hi from")
    registered = ui.post(
        "/api/v1/workflows", json={"source": v2}, headers=users.headers("developer")
    )
    assert registered.status_code == 201, registered.text
    digest = registered.json()["digest"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    change_id = submit(ui, users)
    as_user(ui, "operator")
    page = ui.get(f"/changes/{change_id}").text
    assert digest in page
    assert "changes since echo@1" in page
    assert "-        params: {command: &#34;echo hello from" in page
    assert "+        params: {command: &#34;echo hi from" in page
