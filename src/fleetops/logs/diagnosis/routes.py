"""Diagnosis JSON API: rollup series for charts (viewer role).

Every time range is `from`/`to` (ISO 8601; without a zone, UTC) or `range` (15m, 1h, 6h, 24h);
the default is the last 15 minutes and a range spans at most 24 hours. A reversed or too long
range is a 400; a malformed value is a 422."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from fleetops.auth.dependencies import SessionDep, Viewer
from fleetops.errors import ERROR_RESPONSES
from fleetops.kit.instants import Instant
from fleetops.logs.diagnosis import repository as diagnosis
from fleetops.logs.diagnosis.repository import (
    HostErrorSeries,
    HostTaskSeries,
    JobOrder,
    JobRead,
    LatencySeries,
    LinkMatrix,
    LinkSeries,
    Metric,
    TemplateSeries,
    TimeRange,
    WindowLength,
)
from fleetops.models import utcnow

router = APIRouter(prefix="/diagnosis", tags=["diagnosis"], responses=ERROR_RESPONSES)

Since = Annotated[
    Instant | None,
    Query(
        alias="from",
        description="range start (ISO 8601; naive = UTC); before `to`, at most 24 h before it, "
        "and not with `range` (400 InvalidRange otherwise)",
    ),
]
Until = Annotated[Instant | None, Query(alias="to", description="range end; default now")]
Last = Annotated[
    Literal["15m", "1h", "6h", "24h"] | None,
    Query(alias="range", description="the last 15m, 1h, 6h or 24h (instead of from/to)"),
]
Seconds = Annotated[WindowLength, Query(description="window length: 10 or 60 seconds")]
Rack = Annotated[str, Path(min_length=1, max_length=64)]
Host = Annotated[str, Path(min_length=1, max_length=255)]
TemplateId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _range(since: datetime | None, until: datetime | None, last: str | None) -> TimeRange:
    return diagnosis.resolve_range(start=since, end=until, last=last, now=utcnow())


@router.get("/latency", response_model=LatencySeries)
def latency(
    session: SessionDep,
    _: Viewer,
    metric: Metric = "job",
    seconds: Seconds = WindowLength.SHORT,
    since: Since = None,
    until: Until = None,
    last: Last = None,
) -> LatencySeries:
    """Job (seconds) or task (milliseconds) duration percentiles per window, oldest first."""
    rng = _range(since, until, last)
    return diagnosis.latency_series(session, metric=metric, seconds=seconds, rng=rng)


@router.get("/jobs", response_model=list[JobRead])
def jobs(
    session: SessionDep,
    _: Viewer,
    state: Literal["running", "finished", "failed", "killed"] | None = None,
    order: JobOrder = "slowest",
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    since: Since = None,
    until: Until = None,
    last: Last = None,
) -> list[JobRead]:
    """Jobs that ran during the range, slowest first (by duration) or most recently started."""
    rng = _range(since, until, last)
    return diagnosis.jobs(session, state=state, order=order, limit=limit, rng=rng)


@router.get("/links", response_model=LinkMatrix)
def links(
    session: SessionDep,
    _: Viewer,
    seconds: Seconds = WindowLength.LONG,
    since: Since = None,
    until: Until = None,
    last: Last = None,
) -> LinkMatrix:
    """The rack × rack transfer matrix over the range, and every rack (for the axes).

    Windows merge per cell: transfers, bytes and slow transfers add up; `p95_ms` is the highest
    window p95; `p50_ms` and `mbps_p50` are window medians averaged, weighted by transfers."""
    return diagnosis.link_matrix(session, seconds=seconds, rng=_range(since, until, last))


@router.get("/links/{src_rack}/{dst_rack}", response_model=LinkSeries)
def link(
    session: SessionDep,
    _: Viewer,
    src_rack: Rack,
    dst_rack: Rack,
    seconds: Seconds = WindowLength.LONG,
    since: Since = None,
    until: Until = None,
    last: Last = None,
) -> LinkSeries:
    """One cell of the matrix (transfers from `src_rack` to `dst_rack`), window by window."""
    rng = _range(since, until, last)
    return diagnosis.link_series(
        session, src_rack=src_rack, dst_rack=dst_rack, seconds=seconds, rng=rng
    )


@router.get("/hosts/{host}/tasks", response_model=HostTaskSeries)
def host_tasks(
    session: SessionDep,
    _: Viewer,
    host: Host,
    since: Since = None,
    until: Until = None,
    last: Last = None,
) -> HostTaskSeries:
    """A host's task durations per minute (ms), with their ratio to the same stages elsewhere."""
    return diagnosis.host_tasks(session, host=host, rng=_range(since, until, last))


@router.get("/hosts/{host}/errors", response_model=HostErrorSeries)
def host_errors(
    session: SessionDep,
    _: Viewer,
    host: Host,
    since: Since = None,
    until: Until = None,
    last: Last = None,
) -> HostErrorSeries:
    """A host's error-signature lines (disk I/O, file system, MCE/EDAC, NIC, OOM...) per minute."""
    return diagnosis.host_errors(session, host=host, rng=_range(since, until, last))


@router.get("/templates/{template_id}/counts", response_model=TemplateSeries)
def template_counts(
    session: SessionDep,
    _: Viewer,
    template_id: TemplateId,
    since: Since = None,
    until: Until = None,
    last: Last = None,
) -> TemplateSeries:
    """Lines per minute of one template, and how many hosts wrote them (404 if unknown)."""
    rng = _range(since, until, last)
    return diagnosis.template_counts(session, template_id=template_id, rng=rng)
