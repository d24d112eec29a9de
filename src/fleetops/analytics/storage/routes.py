"""Storage reports over the API: saved by `fleetops storage analyze --save`, read by anyone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field

from fleetops.analytics.storage import provisioning, service
from fleetops.analytics.storage.schemas import Report
from fleetops.auth.dependencies import Developer, SessionDep, Viewer, audit_context
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.repository import change_read
from fleetops.changes.schemas import ChangeRead
from fleetops.errors import ERROR_RESPONSES
from fleetops.inventory.selectors import SelectorText
from fleetops.kit.pagination import MAX_OFFSET, Limit, Offset
from fleetops.models import StorageReport

router = APIRouter(tags=["storage"], responses=ERROR_RESPONSES)
ReportId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]


class ReportSummary(BaseModel):
    id: int
    created_at: datetime
    created_by: str
    source: str
    files: int
    directories: int
    bytes: int
    raw_bytes: int
    disk_savings: int


class ReportPage(BaseModel):
    items: list[ReportSummary]
    total: int
    limit: int
    offset: int


class StoredReport(ReportSummary):
    report: Report


def _summary(row: StorageReport) -> dict[str, Any]:
    return {c: getattr(row, c) for c in ReportSummary.model_fields}


@router.post("/storage/reports", response_model=ReportSummary, status_code=status.HTTP_201_CREATED)
def save_report(
    body: Report, request: Request, session: SessionDep, who: Developer
) -> dict[str, Any]:
    """Keep a report that `fleetops storage analyze` produced (the analysis runs where the data
    is; only its figures travel)."""
    return _summary(service.save_report(session, audit_context(request, who), body))


@router.get("/storage/reports", response_model=ReportPage)
def list_reports(
    session: SessionDep, _: Viewer, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Newest first."""
    rows, total = service.list_reports(session, limit=limit, offset=offset)
    return {"items": [_summary(r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/storage/reports/{report_id}", response_model=StoredReport)
def get_report(report_id: ReportId, session: SessionDep, _: Viewer) -> dict[str, Any]:
    row = service.get_report(session, report_id)
    return {**_summary(row), "report": row.report}


@router.post(
    "/storage/reports/{report_id}/{action}",
    response_model=ChangeRead,
    status_code=status.HTTP_201_CREATED,
)
def propose(
    report_id: ReportId,
    action: service.Proposal,
    request: Request,
    session: SessionDep,
    who: Developer,
) -> ChangeRead:
    """Propose the change that frees what the report found, on the host `storage_hdfs_client`
    names; it awaits approval. `expunge`: delete the trash checkpoints older than the report's
    retention (workflow `expunge-trash`). `unlayer`: delete the `.Trash` directories inside
    users' trash (workflow `remove-layered-trash`). 409 when the report found none."""
    settings = request.app.state.settings
    change = service.propose(
        session,
        audit_context(request, who),
        report_id,
        action,
        selector=settings.storage_hdfs_client,
        library=request.app.state.library,
        policy=ApprovalPolicy.of(settings),
    )
    return change_read(session, change)


class Collect(BaseModel):
    selector: SelectorText = "all"
    reason: str = Field("", max_length=2000)


def facts_cache(request: Request) -> provisioning.FactsCache:
    """The server's parsed filesystem facts (by step id: an output never changes)."""
    state = request.app.state
    if not hasattr(state, "storage_facts"):
        state.storage_facts = provisioning.FactsCache()
    cache: provisioning.FactsCache = state.storage_facts
    return cache


@router.get("/storage/inodes", response_model=provisioning.InodeView)
def inode_view(
    request: Request,
    session: SessionDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> provisioning.InodeView:
    """Inode provisioning and reserved blocks across the fleet, from each host's newest
    filesystem facts (collected by the `collect-filesystem-facts` workflow): provisioned vs
    used inodes, inode table and reserve bytes, what re-provisioning would free; per model,
    the `limit` hosts and filesystems that would save most, and the hosts it could not read."""
    return service.inode_view(session, facts_cache(request), limit=limit)


@router.post(
    "/storage/inodes/collect", response_model=ChangeRead, status_code=status.HTTP_201_CREATED
)
def collect_facts(
    body: Collect, request: Request, session: SessionDep, who: Developer
) -> ChangeRead:
    """Submit the read-only change that collects the filesystem facts of the hosts `selector`
    picks (df, tune2fs -l, xfs_info; it changes nothing, so it runs without review)."""
    settings = request.app.state.settings
    change = service.collect_facts(
        session,
        audit_context(request, who),
        selector=body.selector,
        reason=body.reason,
        library=request.app.state.library,
        policy=ApprovalPolicy.of(settings),
    )
    return change_read(session, change)


class Reserve(BaseModel):
    model: str = Field(min_length=1, max_length=128)
    percent: int = Field(1, ge=0, le=5)


@router.post(
    "/storage/inodes/reserve", response_model=ChangeRead, status_code=status.HTTP_201_CREATED
)
def propose_reserve(
    body: Reserve, request: Request, session: SessionDep, who: Developer
) -> ChangeRead:
    """Propose the change that lowers the blocks a hardware model's ext4 data disks reserve for
    root to `percent` (workflow `release-reserved-blocks`, `tune2fs -m`, online) on every host of
    the model; it awaits review. 409 when no collected facts show such a reserve."""
    settings = request.app.state.settings
    change = service.propose_reserve(
        session,
        audit_context(request, who),
        facts_cache(request),
        model=body.model,
        percent=body.percent,
        library=request.app.state.library,
        policy=ApprovalPolicy.of(settings),
    )
    return change_read(session, change)
