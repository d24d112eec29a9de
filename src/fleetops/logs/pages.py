"""Diagnosis pages: live job latency, the rack × rack link heatmap, a host's tasks and errors, the
template explorer and log search.

Every filter and time range is in the URL, so a finding's evidence link (or a colleague's) opens
the same view. Tables and summaries are rendered here and read without JavaScript; the charts are
drawn by `static/diagnosis.js` from the JSON API (`/api/v1/diagnosis/...`), which it polls every
few seconds while the range is relative ("last 15 min"), so the page follows the fleet live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from fleetops.auth.dependencies import Principal, SessionDep
from fleetops.dashboard.render import PageUser, RefreshParam, pager, refresh_choice
from fleetops.dashboard.render import page as render_page
from fleetops.errors import NotFound
from fleetops.kit.pagination import MAX_OFFSET
from fleetops.logs import service as logs
from fleetops.logs.diagnosis import repository as diagnosis
from fleetops.logs.diagnosis.repository import RANGES, TimeRange
from fleetops.models import utcnow

router = APIRouter(include_in_schema=False)

POLL_SECONDS = 5
LINES_PER_PAGE = 100
TEMPLATE_PAGE_SIZES = (25, 50, 100)
TEMPLATE_ORDERS = {"count": "count", "last_seen": "last seen", "first_seen": "first seen"}
TOP_CELLS = 15
VIEWS = {"links": "/diagnosis/links", "host_tasks": "/diagnosis/host_tasks"}
RangeParam = Annotated[str, Query(alias="range", max_length=8)]
SinceParam = Annotated[str, Query(alias="from", max_length=64)]
UntilParam = Annotated[str, Query(alias="to", max_length=64)]


# --- formatting helpers for the templates --------------------------------------------------------


def duration(value: float | None, unit: str = "ms") -> str:
    """A duration as an operator reads it: '840 ms', '3.2 s', '4.5 min'."""
    if value is None:
        return "—"
    seconds = value / 1000 if unit == "ms" else value
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def size(value: int | None) -> str:
    """Bytes in decimal units: '1.3 GB'."""
    if not value:
        return "0 B"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if amount < 1000 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} TB"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}" if value >= 0.01 or value == 0 else "<1%"


def spark(values: list[int], width: int = 120, height: int = 24) -> str:
    """The `points` of an SVG polyline drawing `values` left to right, scaled to the box."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (v / top) * (height - 2):.1f}" for i, v in enumerate(values)
    )


def iso(moment: datetime) -> str:
    """A URL-friendly UTC time: 2026-11-26T12:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def link_path(src_rack: str, dst_rack: str) -> str:
    """The page of one heatmap cell (rack names as single path segments)."""
    return f"/diagnosis/links/{quote(src_rack, safe='')}/{quote(dst_rack, safe='')}"


HELPERS = {
    "duration": duration,
    "size": size,
    "percent": percent,
    "spark": spark,
    "iso": iso,
    "link_path": link_path,
}


def page(
    request: Request, name: str, who: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render_page(request, name, who, status_code, **HELPERS, **context)


# --- time ranges ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeView:
    """The time range of a page: its bounds, how the URL says it, and whether it follows now."""

    rng: TimeRange
    key: str  # "15m", "1h", ... or "" when given as from/to
    params: dict[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return bool(self.key)

    @property
    def query(self) -> str:
        """The API's query string for this range (a relative one is resolved by the server)."""
        return urlencode(self.params or {"range": self.key})

    @property
    def seconds(self) -> int:
        """10 s windows up to an hour, minutes beyond (a day of 10 s points is a blur)."""
        return 10 if self.rng.span.total_seconds() <= 3600 else 60

    @property
    def label(self) -> str:
        if self.key:
            return f"last {self.key.replace('m', ' min').replace('h', ' h')}"
        return f"{iso(self.rng.start)} – {iso(self.rng.end)}"


def range_view(since: str, until: str, last: str) -> RangeView:
    """Explicit `from`/`to` win over `range` (a page's picker and a deep link may both say one)."""
    start = diagnosis.parse_time(since, "from")
    end = diagnosis.parse_time(until, "to")
    now = utcnow()
    if start is not None or end is not None:
        rng = diagnosis.resolve_range(start=start, end=end, last=None, now=now)
        return RangeView(rng, "", {"from": iso(rng.start), "to": iso(rng.end)})
    key = last.strip() or "15m"
    rng = diagnosis.resolve_range(start=None, end=None, last=key, now=now)
    return RangeView(rng, key, {"range": key} if key != "15m" else {})


def _empty_hint(session: Session) -> bool:
    """True when no log ever arrived: the pages then say how to send some."""
    return not diagnosis.has_logs(session)


# --- /diagnosis ----------------------------------------------------------------------------------


@router.get("/diagnosis", response_class=HTMLResponse)
def overview(
    request: Request,
    session: SessionDep,
    who: PageUser,
    last: RangeParam = "",
    since: SinceParam = "",
    until: UntilParam = "",
    refresh: RefreshParam = "",
) -> HTMLResponse:
    """Live job and task latency, the slowest jobs of the range and the open findings."""
    view = range_view(since, until, last)
    job = diagnosis.latency_series(session, metric="job", seconds=view.seconds, rng=view.rng)
    task = diagnosis.latency_series(session, metric="task", seconds=view.seconds, rng=view.rng)
    open_by_kind = diagnosis.open_findings(session)
    return page(
        request,
        "diagnosis/overview.html",
        who,
        view=view,
        refresh=refresh_choice(refresh, default="5s"),
        ranges=RANGES,
        job=job,
        task=task,
        slowest=diagnosis.jobs(session, state=None, order="slowest", limit=10, rng=view.rng),
        open_by_kind=open_by_kind,
        open_total=sum(open_by_kind.values()),
        no_logs=_empty_hint(session),
        poll=POLL_SECONDS,
    )


# --- /diagnosis/links ----------------------------------------------------------------------------


def _top_cells(cells: list[diagnosis.LinkCell], entity: str) -> list[diagnosis.LinkCell]:
    """The cells worth a look: the rack's own when one is picked, else the slowest of all."""
    if entity:
        cells = [c for c in cells if entity in (c.src_rack, c.dst_rack)]
    ranked = sorted(cells, key=lambda c: (-c.slow_fraction, -(c.p95_ms or 0.0)))
    return ranked if entity else ranked[:TOP_CELLS]


@router.get("/diagnosis/links", response_class=HTMLResponse)
def links(
    request: Request,
    session: SessionDep,
    who: PageUser,
    entity: Annotated[str, Query(max_length=64)] = "",
    color: Annotated[str, Query(pattern="^(p95|slow)$")] = "p95",
    last: RangeParam = "",
    since: SinceParam = "",
    until: UntilParam = "",
) -> HTMLResponse:
    """The rack × rack heatmap of transfers; `entity` highlights one rack's row and column."""
    view = range_view(since, until, last)
    entity = entity.strip()
    matrix = diagnosis.link_matrix(session, seconds=view.seconds, rng=view.rng)
    filters = {"entity": entity, "color": color if color != "p95" else ""}
    return page(
        request,
        "diagnosis/links.html",
        who,
        view=view,
        ranges=RANGES,
        matrix=matrix,
        top=_top_cells(matrix.cells, entity),
        entity=entity,
        color=color,
        filters=filters,
        slow_cell=diagnosis.SLOW_CELL,
        no_logs=_empty_hint(session),
        poll=POLL_SECONDS * 3,
    )


@router.get("/diagnosis/links/{src_rack}/{dst_rack}", response_class=HTMLResponse)
def link_detail(
    request: Request,
    session: SessionDep,
    who: PageUser,
    src_rack: str,
    dst_rack: str,
    last: RangeParam = "",
    since: SinceParam = "",
    until: UntilParam = "",
    refresh: RefreshParam = "",
) -> HTMLResponse:
    """One cell of the heatmap window by window: latency, transfers and slow transfers.

    The windows are the heatmap's (10 s up to an hour, else minutes), and so are the live
    updates, so the totals here are the cell's there."""
    if len(src_rack) > 64 or len(dst_rack) > 64:
        raise NotFound("rack names are at most 64 characters")
    view = range_view(since, until, last)
    series = diagnosis.link_series(
        session, src_rack=src_rack, dst_rack=dst_rack, seconds=view.seconds, rng=view.rng
    )
    transfers = sum(p.transfers for p in series.points)
    slow = sum(p.slow for p in series.points)
    worst = max((p.p95_ms for p in series.points if p.p95_ms is not None), default=None)
    return page(
        request,
        "diagnosis/link.html",
        who,
        view=view,
        refresh=refresh_choice(refresh, default="10s"),
        ranges=RANGES,
        series=series,
        src=src_rack,
        dst=dst_rack,
        api=f"/api/v1/diagnosis/links/{quote(src_rack, safe='')}/{quote(dst_rack, safe='')}",
        totals={"transfers": transfers, "slow": slow, "bytes": sum(p.bytes for p in series.points)},
        slow_fraction=slow / transfers if transfers else None,
        worst_p95=worst,
        poll=POLL_SECONDS * 2,
    )


# --- /diagnosis/host_tasks -----------------------------------------------------------------------


@router.get("/diagnosis/host_tasks", response_class=HTMLResponse)
def host_detail(
    request: Request,
    session: SessionDep,
    who: PageUser,
    entity: Annotated[str, Query(min_length=1, max_length=255)],
    last: RangeParam = "",
    since: SinceParam = "",
    until: UntilParam = "",
    refresh: RefreshParam = "",
) -> HTMLResponse:
    """A host's task durations against the fleet's, its failed tasks and its error lines."""
    view = range_view(since, until, last)
    host = entity.strip()
    tasks = diagnosis.host_tasks(session, host=host, rng=view.rng)
    errors = diagnosis.host_errors(session, host=host, rng=view.rng)
    ratios = [p.ratio for p in tasks.points if p.ratio is not None]
    return page(
        request,
        "diagnosis/host.html",
        who,
        view=view,
        refresh=refresh_choice(refresh, default="10s"),
        ranges=RANGES,
        host=host,
        tasks=tasks,
        errors=errors,
        api=f"/api/v1/diagnosis/hosts/{quote(host, safe='')}",
        total_tasks=sum(p.tasks for p in tasks.points),
        failed=sum(p.failed for p in tasks.points),
        worst_ratio=max(ratios, default=None),
        lines_href=_search_href(host=host, since=iso(view.rng.start), until=iso(view.rng.end)),
        poll=POLL_SECONDS * 2,
    )


@router.get("/diagnosis/{metric}", response_class=HTMLResponse)
def unknown_view(metric: str, who: PageUser) -> HTMLResponse:
    """Evidence may name a metric no page draws yet: say which ones exist."""
    known = ", ".join(f"{name} ({path})" for name, path in VIEWS.items())
    raise NotFound(f"no diagnosis view for {metric[:64]!r}; the views are: {known}")


# --- /logs/templates -----------------------------------------------------------------------------


@router.get("/logs/templates", response_class=HTMLResponse)
def templates(
    request: Request,
    session: SessionDep,
    who: PageUser,
    q: Annotated[str, Query(max_length=500)] = "",
    order: Annotated[str, Query(pattern="^(count|last_seen|first_seen)$")] = "count",
    limit: Annotated[int, Query(ge=1, le=max(TEMPLATE_PAGE_SIZES))] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    last: RangeParam = "",
) -> HTMLResponse:
    """Mined templates by count, last or first seen, with a sparkline of their recent lines."""
    q = q.strip()
    view = range_view("", "", last or "1h")
    rows, total = logs.list_templates(
        session, contains=q or None, since=None, order=order, limit=limit, offset=offset
    )
    lines = diagnosis.template_sparklines(session, template_ids=[t.id for t in rows], rng=view.rng)
    params = {
        "q": q,
        "order": order if order != "count" else "",
        "limit": limit if limit != 50 else "",
        "range": view.key if view.key != "1h" else "",
    }
    return page(
        request,
        "diagnosis/templates.html",
        who,
        view=view,
        ranges=RANGES,
        templates=rows,
        sparks=lines,
        total=total,
        q=q,
        order=order,
        orders=TEMPLATE_ORDERS,
        limit=limit,
        params=params,
        pager=pager(total, limit, offset),
        page_sizes=TEMPLATE_PAGE_SIZES,
        no_logs=_empty_hint(session),
    )


# --- /logs/search --------------------------------------------------------------------------------


def _search_href(**filters: Any) -> str:
    names = {"since": "from", "until": "to"}
    query = {names.get(k, k): v for k, v in filters.items() if v not in (None, "")}
    return f"/logs/search?{urlencode(query)}" if query else "/logs/search"


@router.get("/logs/search", response_class=HTMLResponse)
def search(
    request: Request,
    session: SessionDep,
    who: PageUser,
    host: Annotated[str, Query(max_length=255)] = "",
    template: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    q: Annotated[str, Query(max_length=500)] = "",
    last: RangeParam = "",
    since: SinceParam = "",
    until: UntilParam = "",
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    tail: Annotated[str, Query(max_length=1)] = "",
) -> HTMLResponse:
    """Stored lines newest first, by host, template, text and time; more on demand; live tail."""
    host, q = host.strip(), q.strip()
    start, end, bounds = _search_bounds(since, until, last)
    query = logs.LineQuery(
        host=host or None, template_id=template, contains=q or None, since=start, until=end
    )
    rows = diagnosis.older_lines(session, query, before_id=before, limit=LINES_PER_PAGE)
    filters = {"host": host, "template": template, "q": q, **bounds}
    more = rows[-1].id if len(rows) == LINES_PER_PAGE else None
    context: dict[str, Any] = {
        "lines": rows,
        "filters": filters,
        "more_href": _search_href(**filters, before=more) if more else None,
    }
    if request.headers.get("hx-request") and before is not None:
        return page(request, "diagnosis/_lines.html", who, **context)
    api_filters = {"host": host, "template": template, "contains": q, "from": filters["from"]}
    return page(
        request,
        "diagnosis/search.html",
        who,
        **context,
        host=host,
        template=template,
        q=q,
        since=filters["from"],
        until=filters["to"],
        key=filters["range"],
        ranges=RANGES,
        tail=tail == "1" and end is None,
        tail_query=urlencode({k: v for k, v in api_filters.items() if v not in (None, "")}),
        newest=rows[0].id if rows and before is None else diagnosis.latest_line_id(session),
        paged=before is not None,
        template_text=_template_text(session, template),
        retention_hours=request.app.state.settings.logs_retention_hours,
        no_logs=_empty_hint(session),
    )


def _search_bounds(
    since: str, until: str, last: str
) -> tuple[datetime | None, datetime | None, dict[str, str]]:
    """The search's time bounds, and how its links say them: explicit from/to win; a relative
    range is given by its key, so the links stay relative."""
    start = diagnosis.parse_time(since, "from")
    end = diagnosis.parse_time(until, "to")
    if start is None and end is None and last.strip():
        start, key = range_view("", "", last).rng.start, last.strip()
    else:
        key = ""
    bounds = {
        "range": key,
        "from": iso(start) if start and not key else "",
        "to": iso(end) if end else "",
    }
    return start, end, bounds


def _template_text(session: Session, template_id: int | None) -> str | None:
    if template_id is None:
        return None
    try:
        return logs.get_template(session, template_id).text
    except NotFound:
        return None
