"""Read queries on findings that other domains need: the findings table is this domain's alone.

The devices domain decides what to do with a host from its findings; it asks here instead of
querying the table, so the meaning of "live", "open" and "about a host" is written once.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.findings.enums import LIVE, FindingStatus
from fleetops.models import Finding

_LIVE = [s.value for s in LIVE]


def existing_ids(session: Session, ids: Collection[int]) -> set[int]:
    """Those of `ids` that are findings."""
    if not ids:
        return set()
    return set(session.scalars(select(Finding.id).where(Finding.id.in_(list(ids)))))


def open_about_hosts(session: Session) -> list[Finding]:
    """Open (not yet acknowledged) findings about hosts, oldest first."""
    return list(
        session.scalars(
            select(Finding)
            .where(Finding.entity_type == "host", Finding.status == FindingStatus.OPEN.value)
            .order_by(Finding.id)
        )
    )


def live_about_host(
    session: Session, hostname: str, *, seen_by: datetime, or_ids: Collection[int] = ()
) -> list[int]:
    """Live findings about `hostname` last seen by `seen_by`, and those of `or_ids` still live."""
    return list(
        session.scalars(
            select(Finding.id).where(
                Finding.entity_type == "host",
                Finding.entity == hostname,
                Finding.status.in_(_LIVE),
                (Finding.last_seen <= seen_by) | Finding.id.in_(list(or_ids)),
            )
        )
    )


def any_live(session: Session, *, kind: str) -> bool:
    """Whether a finding of `kind` is live."""
    found = select(Finding.id).where(Finding.kind == kind, Finding.status.in_(_LIVE)).limit(1)
    return session.scalar(found) is not None


def live_from(session: Session, *, detector: str, kind: str) -> list[Finding]:
    """Live findings one detector reported of one kind."""
    return list(
        session.scalars(
            select(Finding).where(
                Finding.detector == detector, Finding.kind == kind, Finding.status.in_(_LIVE)
            )
        )
    )


def opened_between(
    session: Session, *, start: datetime, end: datetime, limit: int
) -> list[Finding]:
    """Findings first seen in [start, end), the latest `limit` of them (charts mark them)."""
    return list(
        session.scalars(
            select(Finding)
            .where(Finding.first_seen >= start, Finding.first_seen < end)
            .order_by(Finding.first_seen.desc(), Finding.id.desc())
            .limit(limit)
        )
    )


def seen_about_host_since(
    session: Session,
    hostname: str,
    *,
    since: datetime,
    kind: str | None = None,
    signature: str | None = None,
    finding_id: int | None = None,
) -> int:
    """How many live findings about `hostname` (of `kind` and `signature`, or the one finding
    `finding_id`) were seen after `since`: whether a remedied problem came back."""
    query = select(func.count()).where(
        Finding.entity_type == "host",
        Finding.entity == hostname,
        Finding.status.in_(_LIVE),
        Finding.last_seen > since,
    )
    if kind is not None:
        query = query.where(Finding.kind == kind)
    if signature is not None:
        query = query.where(Finding.details["signature"].as_string() == signature)
    if finding_id is not None:
        query = query.where(Finding.id == finding_id)
    return session.scalar(query) or 0
