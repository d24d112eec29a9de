"""Authentication and roles are enforced on every API route, and refusals are audited."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.dashboard.test_pages import log_in
from tests.fixtures.app import PASSWORD, Tokens

# Self-service routes any authenticated user may call for their own credentials.
SELF_SERVICE = {
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    ("POST", "/api/v1/workflows/validate"),  # checks a file, stores nothing
}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) under /api/v1, read from the app itself (included routers too)."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        # Routers included into the app are expanded lazily by FastAPI.
        contexts = getattr(route, "effective_route_contexts", None)
        for r in contexts() if contexts else [route]:
            path, methods = getattr(r, "path", ""), getattr(r, "methods", None) or set()
            if isinstance(r, APIRoute) or path.startswith("/api/v1"):
                found.extend((m, path) for m in sorted(methods) if path.startswith("/api/v1"))
    return sorted(set(found))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_routes_are_enumerated(app: FastAPI) -> None:
    routes = api_routes(app)
    assert ("GET", "/api/v1/hosts") in routes
    assert len(routes) > 20


def test_health_needs_no_authentication(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_every_api_route_rejects_anonymous_calls(app: FastAPI, client: TestClient) -> None:
    for method, path in api_routes(app):
        response = client.request(method, concrete(path), json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "NotAuthenticated"


def test_a_browser_session_reads_the_api_but_changes_nothing_through_it(
    app: FastAPI, client: TestClient, tokens: Tokens
) -> None:
    """The pages' session cookie is for pages: their changes go through forms with a CSRF
    token, so another page on the same site cannot use a logged-in browser to call the API."""
    log_in(client, username="admin", password=PASSWORD)
    assert client.get("/api/v1/hosts").status_code == 200  # the pages' scripts read the API
    for method, path in api_routes(app):
        if method in ("GET", "HEAD"):
            continue
        response = client.request(method, concrete(path), json={})
        assert response.status_code == 401, (method, path, response.text)
    # a token still works beside the cookie
    created = client.post("/api/v1/tokens", json={"name": "x"}, headers=tokens.headers("admin"))
    assert created.status_code == 201, created.text


def test_bad_and_revoked_tokens_are_rejected(client: TestClient, tokens: Tokens) -> None:
    assert (
        client.get("/api/v1/hosts", headers={"Authorization": "Bearer fo_nope"}).status_code == 401
    )
    mine = client.get("/api/v1/tokens", headers=tokens.headers("viewer")).json()
    assert [t["username"] for t in mine] == ["viewer"]
    revoked = client.delete(f"/api/v1/tokens/{mine[0]['id']}", headers=tokens.headers("viewer"))
    assert revoked.status_code == 200
    assert client.get("/api/v1/hosts", headers=tokens.headers("viewer")).status_code == 401


def test_viewer_cannot_mutate(app: FastAPI, client: TestClient, tokens: Tokens) -> None:
    for method, path in api_routes(app):
        if method == "GET" or (method, path) in SELF_SERVICE:
            continue
        response = client.request(method, concrete(path), json={}, headers=tokens.headers("viewer"))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "PermissionDenied"


def test_refusals_are_audited(client: TestClient, tokens: Tokens) -> None:
    client.get("/api/v1/hosts")
    client.post("/api/v1/racks", json={}, headers=tokens.headers("viewer"))
    response = client.get(
        "/api/v1/audit", params={"action": "http.*"}, headers=tokens.headers("admin")
    )
    assert response.status_code == 200, response.text
    records = response.json()["items"]
    outcomes = {(r["actor"], r["outcome"], r["entity_id"]) for r in records}
    assert ("anonymous", "unauthenticated", "/api/v1/hosts") in outcomes
    assert ("viewer", "forbidden", "/api/v1/racks") in outcomes


def test_token_role_cannot_exceed_owner(client: TestClient, tokens: Tokens) -> None:
    response = client.post(
        "/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=tokens.headers("developer")
    )
    assert response.status_code == 403
    created = client.post(
        "/api/v1/tokens", json={"name": "ro", "role": "viewer"}, headers=tokens.headers("operator")
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    scoped = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/whoami", headers=scoped).json()["role"] == "viewer"
    refused = client.post("/api/v1/racks", json={"name": "r1", "datacenter": "x"}, headers=scoped)
    assert refused.status_code == 403
    listed = client.get("/api/v1/tokens", headers=tokens.headers("admin")).text
    assert secret not in listed


def test_admin_manages_users_and_others_cannot(client: TestClient, tokens: Tokens) -> None:
    body = {"username": "alice", "role": "developer", "password": PASSWORD}
    assert (
        client.post("/api/v1/users", json=body, headers=tokens.headers("operator")).status_code
        == 403
    )
    created = client.post("/api/v1/users", json=body, headers=tokens.headers("admin"))
    assert created.status_code == 201
    assert "password" not in created.text
    again = client.post("/api/v1/users", json=body, headers=tokens.headers("admin"))
    assert again.status_code == 409
    assert again.json()["error"] == "UsernameTaken"
    weak = client.post(
        "/api/v1/users",
        json=body | {"username": "bob", "password": "short"},
        headers=tokens.headers("admin"),
    )
    assert weak.status_code == 422


@pytest.mark.parametrize("path", ["/api/v1/hosts/nope", "/api/v1/racks/nope", "/api/v1/nothing"])
def test_not_found_is_typed(client: TestClient, tokens: Tokens, path: str) -> None:
    response = client.get(path, headers=tokens.headers("viewer"))
    assert response.status_code == 404
    assert set(response.json()) >= {"error", "detail"}


def test_the_last_admin_cannot_be_demoted_or_disabled(client: TestClient, tokens: Tokens) -> None:
    admin = tokens.headers("admin")
    for change in ({"role": "viewer"}, {"disabled": True}):
        response = client.patch("/api/v1/users/admin", json=change, headers=admin)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "LastAdmin"
    body = {"username": "second", "role": "admin", "password": PASSWORD}
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 201
    demoted = client.patch("/api/v1/users/admin", json={"role": "operator"}, headers=admin)
    assert demoted.status_code == 200
