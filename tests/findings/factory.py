"""Findings as detectors report them: one small factory with overridable defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.findings import service
from fleetops.findings.schemas import Observation
from fleetops.models import Finding

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def lines_ref(host: str = "h001", minute: int = 0, template: int | None = 7) -> dict[str, Any]:
    start = T0 + timedelta(minutes=minute)
    ref: dict[str, Any] = {
        "type": "lines",
        "host": host,
        "from": start.isoformat(),
        "to": (start + timedelta(minutes=1)).isoformat(),
    }
    if template is not None:
        ref["template_id"] = template
    return ref


def report(session: Session, **overrides: Any) -> tuple[Finding, bool]:
    """Report a warning about slow disk on h001 at T0, unless told otherwise."""
    now = overrides.pop("now", T0)
    args: dict[str, Any] = {
        "kind": "disk_slow",
        "detector": "logs",
        "entity_type": "host",
        "entity": "h001",
        "severity": "warning",
        "score": 1.0,
        "title": "h001: disk I/O errors",
        "evidence": [lines_ref()],
        "details": {},
        "onset_at": now - timedelta(minutes=5),
    }
    args.update(overrides)
    ctx = args.pop("ctx", None)
    return service.report(session, Observation(**args), now=now, ctx=ctx)


def seed(db_url: str, *reports: dict[str, Any]) -> list[int]:
    """Commit one report per mapping (each in its own transaction); their finding ids."""
    engine: Engine = make_engine(db_url)
    ids = []
    for overrides in reports:
        with session_scope(make_session_factory(engine)) as session:
            ids.append(report(session, **overrides)[0].id)
    engine.dispose()
    return ids
