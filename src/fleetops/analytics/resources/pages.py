"""The right-sizing page: a report's totals, each group's recommendation with its saving, risk
and decision, the Apply button, a group's requested / used / recommended over time, and the
scheduler's current quotas. Decisions and Apply are forms (CSRF) like every page's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleetops.analytics.resources import service
from fleetops.analytics.resources.routes import site
from fleetops.audit.service import AuditContext
from fleetops.auth.dependencies import Principal, SessionDep
from fleetops.auth.roles import Role
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.dashboard.render import PageUser, form_action, page
from fleetops.errors import AppError
from fleetops.kit.pagination import MAX_OFFSET
from fleetops.models import ResourceReport

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
LISTED = 20
HINT = "fleetops resources recommend TRACE_DIR"


@router.get("/analytics/resources", response_class=HTMLResponse)
def resources_page(
    request: Request,
    session: SessionDep,
    who: PageUser,
    report: Annotated[int | None, Query(ge=1, le=MAX_OFFSET)] = None,
    group: Annotated[str | None, Query(max_length=255)] = None,
) -> HTMLResponse:
    """A report (the newest unless `report` says which): totals, every group's recommendation
    and decision, one group's chart, and the scheduler's quotas."""
    return _page(request, session, who, report_id=report, group=group)


def _page(
    request: Request,
    session: Session,
    who: Principal,
    *,
    report_id: int | None = None,
    group: str | None = None,
    flash: tuple[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    row = service.get_report(session, report_id) if report_id else service.newest_report(session)
    reports, total = service.list_reports(session, limit=LISTED, offset=0)
    recs = service.recommendations(session, row.id) if row else []
    groups = _groups(recs)
    chosen = (
        group if group in {g["group"] for g in groups} else (groups[0]["group"] if groups else None)
    )
    return page(
        request,
        "analytics/resources.html",
        who,
        status_code=status_code,
        report=row,
        reports=reports,
        total=total,
        groups=groups,
        counts=service.counts(session, [row.id])[row.id] if row else {},
        group=chosen,
        chart=_chart(row, chosen, groups) if row and chosen else None,
        quotas=service.quotas(session, kind=site(request).kind),
        can_decide=who.can(Role.OPERATOR),
        can_collect=who.can(Role.DEVELOPER),
        hint=HINT,
        flash=flash,
    )


def _groups(recs: list[Any]) -> list[dict[str, Any]]:
    """The recommendations per group (CPU and memory side by side), largest saving first."""
    found: dict[str, dict[str, Any]] = {}
    for rec in recs:
        entry = found.setdefault(
            rec.group, {"group": rec.group, "target": rec.target, "saving": 0.0}
        )
        entry[rec.resource] = rec
        entry["saving"] += rec.saving
    return sorted(found.values(), key=lambda g: -g["saving"])


def _chart(report: ResourceReport, group: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart's data: per bucket, requested and used, and what the recommendation would
    request (the recommendation x the instances running), CPU and memory."""
    series = report.figures["series"].get(group)
    entry = next(g for g in groups if g["group"] == group)
    if series is None:
        return {}
    start, width = report.figures["start_s"], report.figures["bucket_s"]
    out: dict[str, Any] = {
        "group": group,
        "t": [start + i * width for i in range(len(series["instances"]))],
    }
    for resource in ("cpu", "mem"):
        rec = entry.get(resource)
        out[resource] = {
            "requested": series[f"{resource}_requested"],
            "used": series[f"{resource}_used"],
            "recommended": [
                round(n * rec.recommendation, 4) if rec else None for n in series["instances"]
            ],
            "unit": "cores" if resource == "cpu" else "memory units",
        }
    return out


@router.post("/analytics/resources/recommendations/{recommendation_id}/{decision}",
             response_class=HTMLResponse)  # fmt: skip
def decide(
    request: Request,
    recommendation_id: Id,
    decision: Annotated[str, Path(pattern="^(accept|reject)$")],
    who: PageUser,
    csrf: Annotated[str, Form(max_length=256)] = "",
    report: Annotated[int, Form(ge=1, le=MAX_OFFSET)] = 1,
) -> Response:
    """Accept or reject a recommendation, then show the report again."""
    return _act(
        request,
        who,
        csrf,
        report,
        lambda session, ctx: service.decide(
            session, ctx, recommendation_id, accept=decision == "accept"
        ),
    )


@router.post("/analytics/resources/{report_id}/apply", response_class=HTMLResponse)
def apply(
    request: Request,
    report_id: Id,
    who: PageUser,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Submit the change that applies the report's accepted recommendations, then open it."""
    submitted: list[int] = []

    def act(session: Session, ctx: AuditContext) -> None:
        change = service.apply(
            session,
            ctx,
            report_id,
            site=site(request),
            library=request.app.state.library,
            policy=ApprovalPolicy.of(request.app.state.settings),
        )
        submitted.append(change.id)

    response = _act(request, who, csrf, report_id, act)
    if submitted and response.status_code == 303:
        response.headers["location"] = f"/changes/{submitted[0]}"
    return response


@router.post("/analytics/resources/quotas/collect", response_class=HTMLResponse)
def collect_quotas(
    request: Request, who: PageUser, csrf: Annotated[str, Form(max_length=256)] = ""
) -> Response:
    """Submit the read-only change that reads the scheduler's quotas, then open it."""
    submitted: list[int] = []

    def act(session: Session, ctx: AuditContext) -> None:
        change = service.collect_quotas(
            session,
            ctx,
            site=site(request),
            library=request.app.state.library,
            policy=ApprovalPolicy.of(request.app.state.settings),
        )
        submitted.append(change.id)

    response = _act(request, who, csrf, None, act, role=Role.DEVELOPER)
    if submitted and response.status_code == 303:
        response.headers["location"] = f"/changes/{submitted[0]}"
    return response


def _act(
    request: Request,
    who: Principal,
    csrf: str,
    report_id: int | None,
    act: Callable[[Session, AuditContext], object],
    *,
    role: Role = Role.OPERATOR,
) -> Response:
    """A form's action in one write transaction; the page again, or why it was refused."""

    def refused(session: Session, exc: AppError) -> Response:
        return _page(
            request,
            session,
            who,
            report_id=report_id,
            flash=("bad", exc.detail),
            status_code=exc.status_code,
        )

    def run(session: Session, ctx: AuditContext) -> None:
        act(session, ctx)

    return form_action(
        request,
        who,
        csrf=csrf,
        act=run,
        done=f"/analytics/resources?report={report_id}" if report_id else "/analytics/resources",
        refused=refused,
        role=role,
        needs="deciding on resources" if role == Role.OPERATOR else "collecting quotas",
    )
