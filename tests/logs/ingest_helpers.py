"""Ingestion test helpers: an ingest token, and the stored lines read back from the database."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.db import make_engine, make_session_factory
from fleetops.models import LogLine
from tests.fixtures.app import Tokens


def ingest_token(client: TestClient, tokens: Tokens, name: str = "agent-1") -> dict[str, str]:
    response = client.post(
        "/api/v1/logs/tokens", json={"name": name}, headers=tokens.headers("admin")
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def stored(db_url: str) -> list[dict[str, Any]]:
    engine = make_engine(db_url)
    with make_session_factory(engine, write=False)() as session:
        rows = session.scalars(select(LogLine).order_by(LogLine.id)).all()
        out = [{c.name: getattr(r, c.key) for c in LogLine.__table__.columns} for r in rows]
    engine.dispose()
    return out
