"""The edge owns the transaction: a write is committed before its answer leaves the server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.db import make_engine
from fleetops.models import Region
from tests.fixtures.app import Tokens


def test_a_create_is_committed_when_its_answer_starts(
    app: FastAPI, client: TestClient, tokens: Tokens, db_url: str
) -> None:
    """Another connection sees the new row at the first byte of the 201, not after it."""
    seen_at_start: list[list[str]] = []
    engine = make_engine(db_url)
    body = json.dumps({"content": "regions: [{name: eu-north}]", "format": "yaml"}).encode()
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/inventory/import",
        "raw_path": b"/api/v1/inventory/import",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", tokens.headers("operator")["Authorization"].encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
            with engine.connect() as conn:
                seen_at_start.append(list(conn.scalars(select(Region.name))))

    asyncio.run(app(scope, receive, send))
    engine.dispose()
    assert seen_at_start == [["eu-north"]]
