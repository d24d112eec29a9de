"""Storage analysis pages: the reports kept, and one report with its findings and charts.

The charts are bars drawn by the page itself (widths in CSS), so the report reads the same
without JavaScript and a screen reader gets the figures as a table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleetops.analytics.storage import service
from fleetops.analytics.storage.routes import facts_cache
from fleetops.audit.service import AuditContext
from fleetops.auth.dependencies import Principal, SessionDep
from fleetops.auth.roles import Role
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.dashboard.render import PageUser, form_action, page
from fleetops.errors import AppError
from fleetops.kit.pagination import MAX_OFFSET
from fleetops.kit.units import binary_bytes
from fleetops.models import ChangeRequest

router = APIRouter(include_in_schema=False)
ReportId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
LISTED = 50
INODE_ROWS = 20
HINT = "fleetops storage analyze FSIMAGE --save"


def bars(shares: list[dict[str, Any]], key: str = "raw_bytes") -> list[dict[str, Any]]:
    """Each share with its bar's width: a percentage of the largest."""
    top = max((s[key] for s in shares), default=0) or 1
    return [{**s, "width": round(100 * s[key] / top, 1)} for s in shares]


@router.get("/analytics/storage", response_class=HTMLResponse)
def storage_reports(request: Request, session: SessionDep, who: PageUser) -> HTMLResponse:
    """The fleet's inode provisioning, and the reports kept, newest first, with what each
    would save."""
    return _index_page(request, session, who)


def _index_page(
    request: Request,
    session: Session,
    who: Principal,
    *,
    flash: tuple[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, total = service.list_reports(session, limit=LISTED, offset=0)
    return page(
        request,
        "analytics/storage.html",
        who,
        status_code=status_code,
        reports=rows,
        total=total,
        inodes=service.inode_view(session, facts_cache(request), limit=INODE_ROWS),
        size=binary_bytes,
        hint=HINT,
        can_collect=who.can(Role.DEVELOPER),
        flash=flash,
    )


@router.post("/analytics/storage/inodes/reserve", response_class=HTMLResponse)
def propose_reserve(
    request: Request,
    who: PageUser,
    csrf: Annotated[str, Form(max_length=256)] = "",
    model: Annotated[str, Form(min_length=1, max_length=128)] = "",
) -> Response:
    """Propose giving back a model's reserved blocks beyond 1 %, then open the change."""
    return _submit(
        request,
        who,
        csrf,
        lambda session, ctx: service.propose_reserve(
            session,
            ctx,
            facts_cache(request),
            model=model,
            percent=1,
            library=request.app.state.library,
            policy=ApprovalPolicy.of(request.app.state.settings),
        ),
    )


@router.post("/analytics/storage/inodes/collect", response_class=HTMLResponse)
def collect_facts(
    request: Request,
    who: PageUser,
    csrf: Annotated[str, Form(max_length=256)] = "",
    selector: Annotated[str, Form(max_length=2000)] = "all",
) -> Response:
    """Submit the read-only change that collects filesystem facts, then open it."""
    return _submit(
        request,
        who,
        csrf,
        lambda session, ctx: service.collect_facts(
            session,
            ctx,
            selector=selector.strip() or "all",
            library=request.app.state.library,
            policy=ApprovalPolicy.of(request.app.state.settings),
        ),
    )


def _submit(
    request: Request,
    who: Principal,
    csrf: str,
    submit: Callable[[Session, AuditContext], ChangeRequest],
    *,
    done: str = "/analytics/storage",
    refused: Callable[[Session, AppError], Response] | None = None,
) -> Response:
    """Submit a change from a page's form, then open it (or show the page with why not: the
    index page unless `refused` says otherwise)."""
    submitted: list[int] = []

    def act(session: Session, ctx: AuditContext) -> None:
        submitted.append(submit(session, ctx).id)

    def index(session: Session, exc: AppError) -> Response:
        flash = ("bad", exc.detail)
        return _index_page(request, session, who, flash=flash, status_code=exc.status_code)

    response = form_action(
        request,
        who,
        csrf=csrf,
        act=act,
        done=done,
        refused=refused or index,
        role=Role.DEVELOPER,
        needs="proposing a change",
    )
    if submitted and response.status_code == 303:
        response.headers["location"] = f"/changes/{submitted[0]}"
    return response


def _report_page(
    request: Request,
    session: Session,
    who: Principal,
    report_id: int,
    *,
    flash: tuple[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    row = service.get_report(session, report_id)
    report = row.report
    return page(
        request,
        "analytics/storage_report.html",
        who,
        status_code=status_code,
        row=row,
        report=report,
        owners=bars(report["top_owners"]),
        directories=bars(report["top_directories"]),
        small_dirs=bars(report["small_files"]["by_directory"], "files"),
        cold_owners=bars(report["cold_data"]["by_owner"]),
        size=binary_bytes,
        can_propose=who.can(Role.DEVELOPER),
        flash=flash,
    )


@router.get("/analytics/storage/{report_id}", response_class=HTMLResponse)
def storage_report(
    request: Request, report_id: ReportId, session: SessionDep, who: PageUser
) -> HTMLResponse:
    """One namespace: totals, findings with their savings, recycle bins, small and cold files,
    top owners and directories."""
    return _report_page(request, session, who, report_id)


@router.post("/analytics/storage/{report_id}/{action}", response_class=HTMLResponse)
def propose(
    request: Request,
    report_id: ReportId,
    action: service.Proposal,
    who: PageUser,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Propose the change a report's finding recommends (the trash expunge, or deleting the
    trash inside the trash), then open it awaiting approval."""
    settings = request.app.state.settings

    def refused(session: Session, exc: AppError) -> Response:
        return _report_page(
            request, session, who, report_id, flash=("bad", exc.detail), status_code=exc.status_code
        )

    return _submit(
        request,
        who,
        csrf,
        lambda session, ctx: service.propose(
            session,
            ctx,
            report_id,
            action,
            selector=settings.storage_hdfs_client,
            library=request.app.state.library,
            policy=ApprovalPolicy.of(settings),
        ),
        done=f"/analytics/storage/{report_id}",
        refused=refused,
    )
