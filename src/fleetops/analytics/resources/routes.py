"""Resource reports over the API: saved by `fleetops resources recommend`, read by anyone,
decided by operators, applied to the scheduler through a change awaiting approval."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from fleetops.analytics.resources import service
from fleetops.analytics.resources.scheduler import Site
from fleetops.analytics.resources.schemas import (
    Decision,
    QuotasView,
    RecommendationRead,
    ReportIn,
    ReportPage,
    ReportRead,
    ReportSummary,
)
from fleetops.auth.dependencies import Developer, Operator, SessionDep, Viewer, audit_context
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.repository import change_read
from fleetops.changes.schemas import ChangeRead
from fleetops.errors import ERROR_RESPONSES
from fleetops.kit.pagination import MAX_OFFSET, Limit, Offset
from fleetops.models import ResourceRecommendation, ResourceReport

router = APIRouter(tags=["resources"], responses=ERROR_RESPONSES)
Id = Annotated[int, Path(ge=1, le=MAX_OFFSET)]


def summary(row: ResourceReport, counts: dict[str, int]) -> dict[str, Any]:
    """A report's summary fields (without its recommendations)."""
    return {
        "id": row.id,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "source": row.source,
        "key": row.key,
        "method": row.method,
        "totals": row.figures["totals"],
        "counts": counts,
    }


def recommendation(row: ResourceRecommendation) -> dict[str, Any]:
    return {name: getattr(row, name) for name in RecommendationRead.model_fields}


def site(request: Request) -> Site:
    return Site.of(request.app.state.settings)


@router.post(
    "/resources/reports", response_model=ReportSummary, status_code=status.HTTP_201_CREATED
)
def save_report(
    body: ReportIn, request: Request, session: SessionDep, who: Developer
) -> dict[str, Any]:
    """Keep a report that `fleetops resources recommend` computed (the trace stays where it is;
    only the figures travel); every recommendation starts proposed, named as the scheduler
    calls its group (`resources_target_template`)."""
    row = service.save_report(session, audit_context(request, who), body, site=site(request))
    return summary(row, service.counts(session, [row.id])[row.id])


@router.get("/resources/reports", response_model=ReportPage)
def list_reports(
    session: SessionDep, _: Viewer, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Newest first, with each report's recommendations counted by status."""
    rows, total = service.list_reports(session, limit=limit, offset=offset)
    found = service.counts(session, [r.id for r in rows])
    items = [summary(r, found[r.id]) for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def report_read(session: Session, report_id: int) -> dict[str, Any]:
    row = service.get_report(session, report_id)
    recs = service.recommendations(session, report_id)
    return {
        **summary(row, service.counts(session, [row.id])[row.id]),
        "recommendations": [recommendation(r) for r in recs],
    }


@router.get("/resources/reports/{report_id}", response_model=ReportRead)
def get_report(report_id: Id, session: SessionDep, _: Viewer) -> dict[str, Any]:
    """A report with every recommendation, its saving, risk and status."""
    return report_read(session, report_id)


@router.post("/resources/recommendations/{recommendation_id}/{decision}",
             response_model=RecommendationRead)  # fmt: skip
def decide(
    recommendation_id: Id,
    decision: Literal["accept", "reject"],
    request: Request,
    session: SessionDep,
    who: Operator,
    body: Decision | None = None,
) -> dict[str, Any]:
    """Accept or reject a recommendation (operators and admins; audited). A decision can be
    changed until the recommendation is applied (409 after, unless its change was rejected,
    cancelled or rolled back)."""
    row = service.decide(
        session,
        audit_context(request, who),
        recommendation_id,
        accept=decision == "accept",
        reason=body.reason if body else "",
    )
    return recommendation(row)


@router.post(
    "/resources/reports/{report_id}/apply",
    response_model=ChangeRead,
    status_code=status.HTTP_201_CREATED,
)
def apply(report_id: Id, request: Request, session: SessionDep, who: Operator) -> ChangeRead:
    """Submit the one change that sets the report's accepted recommendations on the scheduler
    (workflow `apply-resource-requests`, on the host `resources_scheduler_client` names); it
    waits for an approver other than the requester. 409 when nothing is accepted, a target is
    invalid, or memory cannot be converted (`resources_gb_per_memory_unit` unset)."""
    settings = request.app.state.settings
    change = service.apply(
        session,
        audit_context(request, who),
        report_id,
        site=site(request),
        library=request.app.state.library,
        policy=ApprovalPolicy.of(settings),
    )
    return change_read(session, change)


@router.get("/resources/quotas", response_model=QuotasView)
def quotas(request: Request, session: SessionDep, _: Viewer) -> QuotasView:
    """The scheduler's current quotas, from the newest `scheduler_quotas` output."""
    return service.quotas(session, kind=site(request).kind)


class Collect(BaseModel):
    reason: str = Field("", max_length=2000)


@router.post(
    "/resources/quotas/collect", response_model=ChangeRead, status_code=status.HTTP_201_CREATED
)
def collect_quotas(
    body: Collect, request: Request, session: SessionDep, who: Developer
) -> ChangeRead:
    """Submit the read-only change that prints the scheduler's current quotas (workflow
    `collect-scheduler-quotas` on the scheduler client; it changes nothing)."""
    change = service.collect_quotas(
        session,
        audit_context(request, who),
        site=site(request),
        library=request.app.state.library,
        policy=ApprovalPolicy.of(request.app.state.settings),
        reason=body.reason,
    )
    return change_read(session, change)
