"""The client address that limits and audits a caller: forwarded headers only from trusted proxies.

A real `fleetops serve` (uvicorn's proxy-header handling, as configured by fleetops)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import seed_users
from tests.fixtures.server import cli_env, running_server

pytestmark = pytest.mark.slow
FORWARDED = {"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer fo_bad_token"}


def refused_sources(url: str, admin_token: str) -> list[str]:
    audit = httpx.get(
        f"{url}/api/v1/audit",
        params={"outcome": "unauthenticated"},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    ).json()["items"]
    return [row["source"] for row in audit]


@pytest.mark.parametrize(
    ("trusted", "seen"), [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")], ids=["none", "proxy"]
)
def test_a_forwarded_address_counts_only_from_a_trusted_proxy(
    db_url: str, tmp_path: Path, trusted: str, seen: str
) -> None:
    env = cli_env(db_url, tmp_path / "data", FLEETOPS_TRUSTED_PROXIES=trusted)
    with running_server(env) as url:
        tokens = seed_users(db_url)
        answer = httpx.get(f"{url}/api/v1/hosts", headers=FORWARDED, timeout=10)
        assert answer.status_code == 401
        assert refused_sources(url, tokens.admin) == [seen]
