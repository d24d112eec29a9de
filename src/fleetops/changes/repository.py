"""Read queries on changes that other domains need: the change tables are this domain's alone."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.models import ChangeRequest


def by_ids(session: Session, ids: Collection[int]) -> dict[int, ChangeRequest]:
    """The changes with these ids, by id (missing ones left out)."""
    if not ids:
        return {}
    rows = session.scalars(select(ChangeRequest).where(ChangeRequest.id.in_(list(ids))))
    return {c.id: c for c in rows}
