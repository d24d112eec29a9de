"""Read side of log diagnosis: the rollup series and matrices the charts draw.

The stream aggregation writes final windows (10 s and 1 min) into the rollup tables; this module
only reads them back for a time range, merging windows where a chart shows one number for the
whole range (the rack × rack matrix). Ranges are bounded (24 h at most) so a request never scans
more than a day of windows, and every time is UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from fleetops.errors import BadRequest
from fleetops.findings import service as findings
from fleetops.inventory import service as inventory
from fleetops.logs import service as logs
from fleetops.models import (
    HostErrorCount,
    HostTaskWindow,
    LatencyWindow,
    LinkWindow,
    LogJob,
    LogLine,
    TemplateCount,
)

DEFAULT_SPAN = timedelta(minutes=15)
MAX_SPAN = timedelta(hours=24)
RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
}
JOB_STATES = ("running", "finished", "failed", "killed")
UNITS = {"job": "s", "task": "ms"}  # job durations are seconds, task durations milliseconds
SLOW_CELL = 0.2  # a link cell with at least this share of slow transfers is highlighted
# What the log detectors report (logs/detect): the findings the diagnosis pages count.
FINDING_KINDS = ("straggler", "slow_link", "slow_disk", "hardware_error", "template_burst")

Metric = Literal["job", "task"]
JobOrder = Literal["slowest", "recent"]


class WindowLength(IntEnum):
    """The window lengths the aggregation writes (seconds)."""

    SHORT = 10
    LONG = 60


class InvalidRange(BadRequest):
    """A time range that is reversed, too long or not a time at all."""


# --- time ranges --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC; a window belongs to it when the window starts inside it."""

    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start


def _aware(moment: datetime) -> datetime:
    """Times without a zone are UTC (what the pages' date inputs send)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def resolve_range(
    *,
    start: datetime | None,
    end: datetime | None,
    last: str | None,
    now: datetime,
) -> TimeRange:
    """The range asked for: `last` (15m, 1h, 6h, 24h) or `from`/`to`; the last 15 min by default.

    `to` defaults to now and `from` to `to` minus the span; at most 24 h, `from` before `to`."""
    if last is not None and start is not None:
        raise InvalidRange("give either `range` or `from`, not both")
    if last is not None and last not in RANGES:
        raise InvalidRange(f"unknown range {last!r}; use one of {', '.join(RANGES)}")
    span = RANGES[last] if last is not None else DEFAULT_SPAN
    try:
        until = _aware(end) if end is not None else now
        since = _aware(start) if start is not None else until - span
    except (OverflowError, ValueError):
        raise InvalidRange("`from`/`to` are out of the representable time range") from None
    if since >= until:
        raise InvalidRange("`from` must be before `to`")
    if until - since > MAX_SPAN:
        raise InvalidRange("a range spans at most 24 h; narrow `from`/`to`")
    return TimeRange(since, until)


def parse_time(value: str, name: str) -> datetime | None:
    """An ISO 8601 time from a page's query string ('' is none); naive means UTC."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+") if "T" in value else value)
    except ValueError:
        raise InvalidRange(
            f"`{name}` is not a time: use ISO 8601, e.g. 2026-11-26T12:00:00Z"
        ) from None
    return _aware(parsed)


def _in(column: Any, rng: TimeRange) -> Any:
    return (column >= rng.start) & (column < rng.end)


# --- shapes -------------------------------------------------------------------------------------


class LatencyPoint(BaseModel):
    start: datetime
    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


class LatencySeries(BaseModel):
    metric: Metric
    seconds: int = Field(description="window length")
    unit: str = Field(description="s for jobs, ms for tasks")
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    points: list[LatencyPoint]


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    app_id: str
    host: str
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    tasks_finished: int
    tasks_failed: int


class LinkCell(BaseModel):
    src_rack: str
    dst_rack: str
    transfers: int
    bytes: int
    slow: int
    slow_fraction: float = Field(description="slow / transfers")
    p50_ms: float | None = Field(description="windows' medians averaged, weighted by transfers")
    p95_ms: float | None = Field(description="the highest p95 of the windows (an upper bound)")
    mbps_p50: float | None = Field(description="windows' medians averaged, weighted by transfers")
    windows: int


class LinkMatrix(BaseModel):
    seconds: int
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    racks: list[str]
    cells: list[LinkCell]


class LinkPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    start: datetime
    transfers: int
    bytes: int
    slow: int
    p50_ms: float | None
    p95_ms: float | None
    mbps_p50: float | None


class LinkSeries(BaseModel):
    src_rack: str
    dst_rack: str
    seconds: int
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    points: list[LinkPoint]


class HostTaskPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    start: datetime
    tasks: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    ratio: float | None = Field(description="median of duration / its stage's median elsewhere")


class HostTaskSeries(BaseModel):
    host: str
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    points: list[HostTaskPoint]


class ErrorPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    start: datetime
    signature: str
    count: int


class HostErrorSeries(BaseModel):
    host: str
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    totals: dict[str, int] = Field(description="lines per signature over the range")
    points: list[ErrorPoint]


class TemplatePoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    start: datetime
    count: int
    hosts: int


class TemplateSeries(BaseModel):
    template_id: int
    text: str
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    points: list[TemplatePoint]


# --- queries ------------------------------------------------------------------------------------


def latency_series(
    session: Session, *, metric: Metric, seconds: int, rng: TimeRange
) -> LatencySeries:
    """Job or task duration percentiles per window, oldest first."""
    rows = session.scalars(
        select(LatencyWindow)
        .where(
            LatencyWindow.metric == metric,
            LatencyWindow.seconds == seconds,
            _in(LatencyWindow.start, rng),
        )
        .order_by(LatencyWindow.start)
    )
    points = [
        LatencyPoint(start=r.start, count=r.count, p50=r.p50, p95=r.p95, p99=r.p99, max=r.max)
        for r in rows
    ]
    return LatencySeries(
        metric=metric,
        seconds=seconds,
        unit=UNITS[metric],
        start=rng.start,
        end=rng.end,
        points=points,
    )


def _jobs_query(state: str | None, order: JobOrder, rng: TimeRange | None) -> Select[Any]:
    stmt = select(LogJob)
    if state is not None:
        stmt = stmt.where(LogJob.state == state)
    if rng is not None:  # jobs that ran during the range
        began = func.coalesce(LogJob.started_at, LogJob.updated_at)
        stmt = stmt.where(
            began < rng.end, (LogJob.finished_at.is_(None)) | (LogJob.finished_at >= rng.start)
        )
    if order == "slowest":
        return stmt.order_by(LogJob.duration_s.desc().nulls_last(), LogJob.app_id)
    return stmt.order_by(LogJob.started_at.desc().nulls_last(), LogJob.app_id)


def jobs(
    session: Session,
    *,
    state: str | None,
    order: JobOrder,
    limit: int,
    rng: TimeRange | None = None,
) -> list[JobRead]:
    """Jobs slowest first or newest first; with `rng`, only those that ran during it."""
    if state is not None and state not in JOB_STATES:
        raise BadRequest(f"unknown job state {state!r}; use one of {', '.join(JOB_STATES)}")
    rows = session.scalars(_jobs_query(state, order, rng).limit(limit))
    return [JobRead.model_validate(r) for r in rows]


def _weighted(column: Any) -> tuple[Any, Any]:
    """Sum of column × transfers and of the transfers it was known for (a weighted mean)."""
    return (
        func.sum(column * LinkWindow.transfers),
        func.sum(case((column.is_not(None), LinkWindow.transfers), else_=0)),
    )


def _ratio(total: Any, weight: Any) -> float | None:
    return float(total) / float(weight) if total is not None and weight else None


def link_matrix(session: Session, *, seconds: int, rng: TimeRange) -> LinkMatrix:
    """The rack × rack matrix over the range: windows merged per (source rack, target rack).

    Counts add up; p95 is the highest window p95 (percentiles of windows do not add up, and the
    worst window is what an operator looks for); medians are averaged, weighted by transfers."""
    p50_sum, p50_weight = _weighted(LinkWindow.p50_ms)
    mbps_sum, mbps_weight = _weighted(LinkWindow.mbps_p50)
    rows = session.execute(
        select(
            LinkWindow.src_rack,
            LinkWindow.dst_rack,
            func.sum(LinkWindow.transfers),
            func.sum(LinkWindow.bytes),
            func.sum(LinkWindow.slow),
            func.max(LinkWindow.p95_ms),
            p50_sum,
            p50_weight,
            mbps_sum,
            mbps_weight,
            func.count(),
        )
        .where(LinkWindow.seconds == seconds, _in(LinkWindow.start, rng))
        .group_by(LinkWindow.src_rack, LinkWindow.dst_rack)
        .order_by(LinkWindow.src_rack, LinkWindow.dst_rack)
    ).all()
    cells = []
    for src, dst, transfers, size, slow, p95, p50s, p50w, mbs, mbw, windows in rows:
        transfers, slow = int(transfers or 0), int(slow or 0)
        cells.append(
            LinkCell(
                src_rack=src,
                dst_rack=dst,
                transfers=transfers,
                bytes=int(size or 0),
                slow=slow,
                slow_fraction=round(slow / transfers, 4) if transfers else 0.0,
                p50_ms=_ratio(p50s, p50w),
                p95_ms=p95,
                mbps_p50=_ratio(mbs, mbw),
                windows=windows,
            )
        )
    known = {r.name for r in inventory.list_racks(session)}
    racks = sorted(known | {c.src_rack for c in cells} | {c.dst_rack for c in cells})
    return LinkMatrix(seconds=seconds, start=rng.start, end=rng.end, racks=racks, cells=cells)


def link_series(
    session: Session, *, src_rack: str, dst_rack: str, seconds: int, rng: TimeRange
) -> LinkSeries:
    """One cell of the matrix, window by window."""
    rows = session.scalars(
        select(LinkWindow)
        .where(
            LinkWindow.seconds == seconds,
            LinkWindow.src_rack == src_rack,
            LinkWindow.dst_rack == dst_rack,
            _in(LinkWindow.start, rng),
        )
        .order_by(LinkWindow.start)
    )
    return LinkSeries(
        src_rack=src_rack,
        dst_rack=dst_rack,
        seconds=seconds,
        start=rng.start,
        end=rng.end,
        points=[LinkPoint.model_validate(r) for r in rows],
    )


def host_tasks(session: Session, *, host: str, rng: TimeRange) -> HostTaskSeries:
    """A host's task durations per minute, and how they compare with the same stages elsewhere."""
    rows = session.scalars(
        select(HostTaskWindow)
        .where(HostTaskWindow.host == host, _in(HostTaskWindow.start, rng))
        .order_by(HostTaskWindow.start)
    )
    points = [HostTaskPoint.model_validate(r) for r in rows]
    return HostTaskSeries(host=host, start=rng.start, end=rng.end, points=points)


def host_errors(session: Session, *, host: str, rng: TimeRange) -> HostErrorSeries:
    """A host's error-signature lines per minute and signature, with totals per signature."""
    rows = session.scalars(
        select(HostErrorCount)
        .where(HostErrorCount.host == host, _in(HostErrorCount.start, rng))
        .order_by(HostErrorCount.start, HostErrorCount.signature)
    )
    points = [ErrorPoint.model_validate(r) for r in rows]
    totals: dict[str, int] = {}
    for p in points:
        totals[p.signature] = totals.get(p.signature, 0) + p.count
    return HostErrorSeries(host=host, start=rng.start, end=rng.end, totals=totals, points=points)


def template_counts(session: Session, *, template_id: int, rng: TimeRange) -> TemplateSeries:
    """Lines per minute of one template (404 if the template is unknown)."""
    template = logs.get_template(session, template_id)
    rows = session.scalars(
        select(TemplateCount)
        .where(TemplateCount.template_id == template_id, _in(TemplateCount.start, rng))
        .order_by(TemplateCount.start)
    )
    return TemplateSeries(
        template_id=template_id,
        text=template.text,
        start=rng.start,
        end=rng.end,
        points=[TemplatePoint.model_validate(r) for r in rows],
    )


def template_sparklines(
    session: Session, *, template_ids: list[int], rng: TimeRange, buckets: int = 60
) -> dict[int, list[int]]:
    """Lines per template in `buckets` equal slices of the range, for the explorer's sparklines."""
    out = {tid: [0] * buckets for tid in template_ids}
    if not template_ids:
        return out
    rows = session.execute(
        select(TemplateCount.template_id, TemplateCount.start, TemplateCount.count).where(
            TemplateCount.template_id.in_(template_ids), _in(TemplateCount.start, rng)
        )
    )
    width = rng.span / buckets
    for tid, start, count in rows:
        index = min(int((start - rng.start) / width), buckets - 1)
        out[tid][index] += count
    return out


# --- raw lines and findings -----------------------------------------------------------------------


def older_lines(
    session: Session, query: logs.LineQuery, *, before_id: int | None, limit: int
) -> list[LogLine]:
    """One page of a search, newest first; `before_id` continues below the previous page."""
    if query.since and query.until and query.since >= query.until:
        raise InvalidRange("`from` must be before `to`")
    stmt = select(LogLine)
    if query.host:
        stmt = stmt.where(LogLine.host == query.host)
    if query.template_id is not None:
        stmt = stmt.where(logs.template_lines(session, query.template_id))
    if query.contains:
        stmt = stmt.where(LogLine.message.contains(query.contains, autoescape=True))
    if query.since is not None:
        stmt = stmt.where(LogLine.ts >= query.since)
    if query.until is not None:
        stmt = stmt.where(LogLine.ts < query.until)
    if before_id is not None:
        stmt = stmt.where(LogLine.id < before_id)
    return list(session.scalars(stmt.order_by(LogLine.id.desc()).limit(limit)))


def latest_line_id(session: Session) -> int:
    """The newest stored line's id (0 when none): where a live tail starts."""
    return int(session.scalar(select(func.max(LogLine.id))) or 0)


def has_logs(session: Session) -> bool:
    """Whether any line was ever aggregated or is stored: decides the pages' empty state."""
    for column in (LogLine.id, LatencyWindow.start, TemplateCount.start):
        if session.scalar(select(column).limit(1)) is not None:
            return True
    return False


def open_findings(session: Session) -> dict[str, int]:
    """Open findings of the log detectors, per kind (every kind present, zeros too)."""
    return {
        kind: findings.query(session, status="open", kind=kind, limit=1)[1]
        for kind in FINDING_KINDS
    }
