"""Logs use cases: ingest tokens, search over the recent window, templates.

Ingest tokens are separate from user API tokens: a shipper's credential can only send logs, and
its name becomes the `source` of every line it sends (so de-duplication and rate limits are per
shipper, and a leaked shipper token reads nothing)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.errors import BadRequest, Conflict, NotFound
from fleetops.inventory.selectors import select_hosts
from fleetops.kit.digest import sha256
from fleetops.kit.pagination import paginate
from fleetops.logs import repository
from fleetops.models import Host, IngestToken, LogLine, LogTemplate, utcnow

INGEST_PREFIX = "fi_"


def create_ingest_token(
    session: Session, ctx: AuditContext, *, name: str, hosts: str = ""
) -> tuple[IngestToken, str]:
    """A new shipper credential; the plaintext is returned once and never stored. `hosts` (a
    selector) binds it to the hosts whose lines it may send; empty: any host."""
    name = name.strip()
    if not name or len(name) > 128 or any(c.isspace() for c in name):
        raise BadRequest(
            "an ingest token name is 1-128 characters without spaces, e.g. rack07-agent"
        )
    prefix = secrets.token_hex(4)
    plaintext = f"{INGEST_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    if hosts:
        select_hosts(hosts)  # a selector that does not parse is refused now, not at first use
    token = IngestToken(
        name=name, prefix=prefix, token_hash=sha256(plaintext), hosts=hosts, created_by=ctx.actor
    )
    try:
        with session.begin_nested():
            session.add(token)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"an ingest token named {name!r} exists; revoke it or pick another name"
        ) from None
    audit.record(
        session,
        ctx,
        action="ingest_token.create",
        entity_type="ingest_token",
        entity_id=token.id,
        after={"name": name, "prefix": prefix, "hosts": hosts or None},
    )
    return token, plaintext


def list_ingest_tokens(session: Session) -> list[IngestToken]:
    return list(session.scalars(select(IngestToken).order_by(IngestToken.id)))


def revoke_ingest_token(session: Session, ctx: AuditContext, *, name: str) -> IngestToken:
    token = session.scalar(select(IngestToken).where(IngestToken.name == name))
    if token is None:
        raise NotFound(f"ingest token {name!r} not found; `fleetops logs token list` shows them")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        audit.record(
            session,
            ctx,
            action="ingest_token.revoke",
            entity_type="ingest_token",
            entity_id=token.id,
            after={"name": name, "prefix": token.prefix},
        )
    return token


@dataclass(frozen=True)
class IngestSource:
    """Who a presented ingest secret speaks as, and for which hosts (None: any)."""

    name: str
    hosts: frozenset[str] | None


def resolve_ingest_token(session: Session, raw: str) -> IngestSource | None:
    """The source for a presented ingest secret, or None if unknown or revoked; a bound token's
    selector is resolved to hostnames now (the edge caches the answer for a few seconds)."""
    if not raw.startswith(INGEST_PREFIX):
        return None
    token = repository.token_by_hash(session, sha256(raw))
    if token is None or token.revoked_at is not None:
        return None
    if not token.hosts:
        return IngestSource(token.name, None)
    names = session.scalars(select_hosts(token.hosts).with_only_columns(Host.hostname))
    return IngestSource(token.name, frozenset(names))


@dataclass(frozen=True)
class LineQuery:
    host: str | None = None
    source: str | None = None
    template_id: int | None = None
    contains: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int | None = None  # for tailing: only lines stored after this one


def _lines(session: Session, q: LineQuery) -> Select[LogLine]:
    stmt = select(LogLine)
    if q.host:
        stmt = stmt.where(LogLine.host == q.host)
    if q.source:
        stmt = stmt.where(LogLine.source == q.source)
    if q.template_id is not None:
        stmt = stmt.where(template_lines(session, q.template_id))
    if q.contains:
        stmt = stmt.where(LogLine.message.contains(q.contains, autoescape=True))
    if q.since is not None:
        stmt = stmt.where(LogLine.ts >= q.since)
    if q.until is not None:
        stmt = stmt.where(LogLine.ts < q.until)
    if q.after_id is not None:
        stmt = stmt.where(LogLine.id > q.after_id)
    return stmt


def template_lines(session: Session, template_id: int) -> ColumnElement[bool]:
    """Lines of a template, also those stored under the ids of templates merged into it."""
    family = repository.template_family(session, template_id)
    if len(family) == 1:
        return LogLine.template_id == template_id
    return LogLine.template_id.in_(family)


def search_lines(session: Session, q: LineQuery, *, limit: int) -> list[LogLine]:
    """Newest first (tailing, with `after_id`: oldest first, to print in order)."""
    if q.since and q.until and q.since >= q.until:
        raise BadRequest("`from` must be before `to`")
    order = LogLine.id.asc() if q.after_id is not None else LogLine.id.desc()
    return list(session.scalars(_lines(session, q).order_by(order).limit(limit)))


def list_templates(
    session: Session,
    *,
    contains: str | None,
    since: datetime | None,
    order: str,
    limit: int,
    offset: int,
) -> tuple[list[LogTemplate], int]:
    stmt = select(LogTemplate).where(LogTemplate.alias_of.is_(None))
    if contains:
        stmt = stmt.where(LogTemplate.text.contains(contains, autoescape=True))
    if since is not None:
        stmt = stmt.where(LogTemplate.last_seen >= since)
    columns: dict[str, Any] = {
        "count": LogTemplate.count.desc(),
        "last_seen": LogTemplate.last_seen.desc(),
        "first_seen": LogTemplate.first_seen.desc(),
        "id": LogTemplate.id.asc(),
    }
    if order not in columns:
        raise BadRequest(f"unknown order {order!r}; use one of {', '.join(columns)}")
    return paginate(
        session, stmt.order_by(columns[order], LogTemplate.id), limit=limit, offset=offset
    )


def get_template(session: Session, template_id: int) -> LogTemplate:
    template = session.get(LogTemplate, template_id)
    if template is None:
        raise NotFound(f"template {template_id} not found")
    return template
