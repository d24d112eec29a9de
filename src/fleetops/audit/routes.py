"""Query and verify the audit log (read-only: the log is append-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fleetops.audit import service
from fleetops.audit.schemas import AuditPage, AuditRead, AuditVerify
from fleetops.auth.dependencies import SessionDep, Viewer
from fleetops.errors import ERROR_RESPONSES
from fleetops.kit.instants import Instant
from fleetops.kit.pagination import Limit, Offset, paginate

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)


@router.get("/audit", response_model=AuditPage)
def list_audit(
    session: SessionDep,
    _: Viewer,
    actor: str | None = None,
    action: Annotated[str | None, Query(description="exact, or with * wildcards")] = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    outcome: str | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AuditPage:
    """Audit records, newest first."""
    stmt = service.query(
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    rows, total = paginate(session, stmt, limit=limit, offset=offset)
    return AuditPage(
        items=[AuditRead.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/audit/verify", response_model=AuditVerify)
def verify_audit(session: SessionDep, _: Viewer) -> AuditVerify:
    """Recompute the hash chain and report the first record that was tampered with."""
    result = service.verify(session)
    return AuditVerify(
        ok=result.ok, checked=result.checked, first_bad_id=result.first_bad_id, reason=result.reason
    )
