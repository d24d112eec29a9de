"""Findings JSON API: list, read, count; acknowledge and resolve (operators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request

from fleetops.auth.dependencies import Operator, SessionDep, Viewer, audit_context
from fleetops.errors import ERROR_RESPONSES
from fleetops.findings import service
from fleetops.findings.enums import FindingStatus, Severity
from fleetops.findings.exceptions import FindingNotFound
from fleetops.findings.schemas import AckBody, FindingCounts, FindingPage, FindingRead, ResolveBody
from fleetops.kit.instants import AwareInstant
from fleetops.kit.pagination import MAX_OFFSET, Limit, Offset

router = APIRouter(prefix="/findings", tags=["findings"], responses=ERROR_RESPONSES)
FindingId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]


@router.get("", response_model=FindingPage)
def list_findings(
    session: SessionDep,
    _: Viewer,
    status: FindingStatus | None = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    entity: Annotated[str | None, Query(max_length=255, description="exact entity name")] = None,
    severity: Severity | None = None,
    since: Annotated[
        AwareInstant | None, Query(description="only findings seen at or after this time")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> FindingPage:
    """Findings, newest first."""
    rows, total = service.query(
        session,
        status=status,
        kind=kind,
        entity=entity,
        severity=severity,
        since=since,
        limit=limit,
        offset=offset,
    )
    return FindingPage(
        items=[FindingRead.model_validate(f) for f in rows], total=total, limit=limit, offset=offset
    )


@router.get("/counts", response_model=FindingCounts)
def count_findings(session: SessionDep, _: Viewer) -> FindingCounts:
    """How many findings by status, and live (open or acknowledged) ones by severity."""
    counts = service.counts(session)
    return FindingCounts(
        by_status=counts.by_status, live_by_severity=counts.live_by_severity, live=counts.live
    )


@router.get("/{finding_id}", response_model=FindingRead)
def get_finding(finding_id: FindingId, session: SessionDep, _: Viewer) -> FindingRead:
    """One finding with its evidence refs and details."""
    finding = service.get(session, finding_id)
    if finding is None:
        raise FindingNotFound(f"finding {finding_id} not found")
    return FindingRead.model_validate(finding)


@router.post("/{finding_id}/ack", response_model=FindingRead)
def acknowledge_finding(
    finding_id: FindingId,
    request: Request,
    session: SessionDep,
    who: Operator,
    body: Annotated[AckBody | None, Body()] = None,
) -> FindingRead:
    """Acknowledge an open finding (operators): someone is on it. Detectors keep bumping it."""
    finding = service.acknowledge(
        session,
        audit_context(request, who),
        finding_id=finding_id,
        reason=body.reason if body else "",
    )
    return FindingRead.model_validate(finding)


@router.post("/{finding_id}/resolve", response_model=FindingRead)
def resolve_finding(
    finding_id: FindingId, body: ResolveBody, request: Request, session: SessionDep, who: Operator
) -> FindingRead:
    """Resolve a live finding (operators), saying why; a recurrence opens a new finding."""
    finding = service.resolve(
        session, audit_context(request, who), finding_id=finding_id, reason=body.reason
    )
    return FindingRead.model_validate(finding)
