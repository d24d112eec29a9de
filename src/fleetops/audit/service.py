"""Write and verify the audit chain.

Each record's hash covers its own fields and the previous record's hash, so editing, deleting or
reordering any row breaks verification from that row on. Writers serialise on the chain tail: a
PostgreSQL advisory lock, or SQLite's single writer (write sessions begin IMMEDIATE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from fleetops.db import lock
from fleetops.kit.jsonable import canonical_json, to_jsonable
from fleetops.models import AuditRecord, utcnow

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditContext:
    """Who acts, from where, within which request; passed to every mutating service."""

    actor: str
    request_id: str = ""
    source: str = ""


def _digest(prev_hash: str, rec: AuditRecord) -> str:
    payload = canonical_json(
        {
            "at": rec.at.isoformat(),
            "actor": rec.actor,
            "action": rec.action,
            "entity_type": rec.entity_type,
            "entity_id": rec.entity_id,
            "outcome": rec.outcome,
            "before": rec.before,
            "after": rec.after,
            "request_id": rec.request_id,
            "source": rec.source,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def record(
    session: Session,
    ctx: AuditContext,
    *,
    action: str,
    entity_type: str,
    entity_id: str | int = "",
    before: Any = None,
    after: Any = None,
    outcome: str = "ok",
) -> AuditRecord:
    """Append one record to the chain (flushed, not committed: it lands with the mutation)."""
    lock(session, "audit-chain")
    prev = session.scalar(select(AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1))
    rec = AuditRecord(
        at=utcnow(),
        actor=ctx.actor,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        outcome=outcome,
        before=to_jsonable(before),
        after=to_jsonable(after),
        request_id=ctx.request_id,
        source=ctx.source,
        prev_hash=prev or GENESIS,
    )
    rec.hash = _digest(rec.prev_hash, rec)
    session.add(rec)
    session.flush()
    return rec


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Recompute the whole chain; report the first record that does not match."""
    expected_prev = GENESIS
    checked = 0
    for rec in _iterate(session, batch):
        if rec.prev_hash != expected_prev:
            return VerifyResult(
                False, checked, rec.id, "previous-hash link broken (row removed or reordered)"
            )
        if _digest(rec.prev_hash, rec) != rec.hash:
            return VerifyResult(
                False, checked, rec.id, "content does not match its hash (row edited)"
            )
        expected_prev = rec.hash
        checked += 1
    return VerifyResult(True, checked)


def _iterate(session: Session, batch: int) -> Iterator[AuditRecord]:
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.id > last_id)
            .order_by(AuditRecord.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id
        session.expunge_all()


def query(
    *,
    actor: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[AuditRecord]:
    """Build the newest-first audit query for the given filters."""
    stmt = select(AuditRecord).order_by(AuditRecord.id.desc())
    if actor:
        stmt = stmt.where(AuditRecord.actor == actor)
    if action:
        stmt = stmt.where(AuditRecord.action.like(action.replace("*", "%")))
    if entity_type:
        stmt = stmt.where(AuditRecord.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditRecord.entity_id == entity_id)
    if outcome:
        stmt = stmt.where(AuditRecord.outcome == outcome)
    if since:
        stmt = stmt.where(AuditRecord.at >= since)
    if until:
        stmt = stmt.where(AuditRecord.at < until)
    return stmt
