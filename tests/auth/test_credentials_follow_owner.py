"""A credential acts with the lower of its own scope and its owner's current role."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from fleetops.db import make_engine
from fleetops.models import User
from tests.fixtures.app import PASSWORD, Tokens

RACK = {"name": "r-new", "datacenter": "dc1"}
FLEET = "regions: [{name: eu}]\ndatacenters: [{name: dc1, region: eu}]\n"


def _setup(client: TestClient, tokens: Tokens) -> None:
    body = {"content": FLEET, "format": "yaml"}
    done = client.post("/api/v1/inventory/import", json=body, headers=tokens.headers("admin"))
    assert done.status_code == 200, done.text


def _create_rack(client: TestClient, headers: dict[str, str], name: str) -> int:
    return client.post("/api/v1/racks", json=RACK | {"name": name}, headers=headers).status_code


def test_a_demoted_operators_token_stops_at_once(client: TestClient, tokens: Tokens) -> None:
    _setup(client, tokens)
    operator = tokens.headers("operator")
    assert _create_rack(client, operator, "r1") == 201

    demoted = client.patch(
        "/api/v1/users/operator", json={"role": "viewer"}, headers=tokens.headers("admin")
    )
    assert demoted.status_code == 200, demoted.text
    assert _create_rack(client, operator, "r2") == 401  # the old token is revoked
    assert client.get("/api/v1/whoami", headers=operator).status_code == 401
    audit = client.get(
        "/api/v1/audit", params={"action": "user.update"}, headers=tokens.headers("admin")
    ).json()["items"]
    [record] = [r for r in audit if r["entity_id"] == "operator"]
    assert record["after"]["role"] == "viewer"
    assert record["after"]["tokens_revoked"]


def test_a_token_never_acts_above_its_owner(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    """Even a token that was not revoked (a role changed outside the API) follows its owner."""
    _setup(client, tokens)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username == "operator").values(role="viewer"))
    engine.dispose()
    operator = tokens.headers("operator")
    refused = client.post("/api/v1/racks", json=RACK, headers=operator)
    assert refused.status_code == 403
    assert "you act as viewer" in refused.json()["detail"]
    assert client.get("/api/v1/whoami", headers=operator).json()["role"] == "viewer"
    audit = client.get(
        "/api/v1/audit", params={"action": "http.post"}, headers=tokens.headers("admin")
    ).json()["items"]
    assert [(r["actor"], r["outcome"]) for r in audit] == [("operator", "forbidden")]


def test_a_password_reset_revokes_tokens_and_a_promotion_keeps_them(
    client: TestClient, tokens: Tokens
) -> None:
    _setup(client, tokens)
    admin = tokens.headers("admin")
    promoted = client.patch("/api/v1/users/developer", json={"role": "operator"}, headers=admin)
    assert promoted.status_code == 200
    developer = tokens.headers("developer")
    # The token keeps its own (developer) scope: a promotion does not widen old credentials.
    assert client.get("/api/v1/whoami", headers=developer).json()["role"] == "developer"
    assert _create_rack(client, developer, "r3") == 403

    reset = client.patch(
        "/api/v1/users/developer", json={"password": PASSWORD + "-new"}, headers=admin
    )
    assert reset.status_code == 200
    assert client.get("/api/v1/whoami", headers=developer).status_code == 401
