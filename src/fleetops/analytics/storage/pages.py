"""Storage analysis pages: the reports kept, and one report with its findings and charts.

The charts are bars drawn by the page itself (widths in CSS), so the report reads the same
without JavaScript and a screen reader gets the figures as a table."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from fleetops.analytics.storage import service
from fleetops.auth.dependencies import SessionDep
from fleetops.dashboard.render import PageUser, page
from fleetops.kit.pagination import MAX_OFFSET
from fleetops.kit.units import binary_bytes

router = APIRouter(include_in_schema=False)
ReportId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
LISTED = 50
HINT = "fleetops storage analyze FSIMAGE --save"


def bars(shares: list[dict[str, Any]], key: str = "raw_bytes") -> list[dict[str, Any]]:
    """Each share with its bar's width: a percentage of the largest."""
    top = max((s[key] for s in shares), default=0) or 1
    return [{**s, "width": round(100 * s[key] / top, 1)} for s in shares]


@router.get("/analytics/storage", response_class=HTMLResponse)
def storage_reports(request: Request, session: SessionDep, who: PageUser) -> HTMLResponse:
    """The reports kept, newest first, with what each would save."""
    rows, total = service.list_reports(session, limit=LISTED, offset=0)
    return page(
        request,
        "analytics/storage.html",
        who,
        reports=rows,
        total=total,
        size=binary_bytes,
        hint=HINT,
    )


@router.get("/analytics/storage/{report_id}", response_class=HTMLResponse)
def storage_report(
    request: Request, report_id: ReportId, session: SessionDep, who: PageUser
) -> HTMLResponse:
    """One namespace: totals, findings with their savings, recycle bins, small and cold files,
    top owners and directories."""
    row = service.get_report(session, report_id)
    report = row.report
    return page(
        request,
        "analytics/storage_report.html",
        who,
        row=row,
        report=report,
        owners=bars(report["top_owners"]),
        directories=bars(report["top_directories"]),
        small_dirs=bars(report["small_files"]["by_directory"], "files"),
        cold_owners=bars(report["cold_data"]["by_owner"]),
        size=binary_bytes,
    )
