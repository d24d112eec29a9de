"""Device and repair metrics JSON API: time to repair, where repairs concentrate, repeat failures,
the ticket load and the capacity out of service over time (drawn by the metrics page)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from fleetops.auth.dependencies import SessionDep, Viewer
from fleetops.devices.metrics import service as metrics
from fleetops.devices.metrics.service import RepairMetrics
from fleetops.errors import ERROR_RESPONSES
from fleetops.models import utcnow

router = APIRouter(prefix="/repairs", tags=["repairs"], responses=ERROR_RESPONSES)

Hours = Annotated[
    int,
    Query(ge=1, le=metrics.MAX_HOURS, description="span of the out-of-service capacity series"),
]
Days = Annotated[
    int,
    Query(ge=1, le=366, description="window of the repair figures (time to repair, counts)"),
]


@router.get("/metrics", response_model=RepairMetrics)
def repair_metrics(
    session: SessionDep, _: Viewer, hours: Hours = 24, days: Days = 30
) -> RepairMetrics:
    """Repair metrics now: MTTR (overall and per rung) and repairs per model and rack over the last
    `days`, the repeat-failure rate, open and overdue tickets, and devices out of service now and at
    the end of each bucket of the last `hours` (rebuilt from the transition history)."""
    return metrics.repair_metrics(session, now=utcnow(), hours=hours, window=timedelta(days=days))
