"""Chart annotations: the events that explain a curve, marked on every time chart's axis.

A latency spike or a dip in capacity usually has a cause an operator can name: a change that
started or finished, a device taken out of service or brought back, a finding that opened, a
network link switched over. This module gathers those from each domain's own read functions
(changes, devices, findings) into one list for a time range, served as
`GET /api/v1/annotations` (drawn by `static/annotations.js`) and pushed on the live screen.

It lives with the dashboard because it is the page kit's view across domains; the domains stay
unaware of each other. Each kind is bounded, and so is the whole answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from fleetops.auth.dependencies import SessionDep, Viewer
from fleetops.changes import repository as changes
from fleetops.changes.enums import ChangeState
from fleetops.devices import service as devices
from fleetops.errors import ERROR_RESPONSES, BadRequest
from fleetops.findings import repository as findings
from fleetops.kit.instants import Instant
from fleetops.models import DeviceTransition, Finding, utcnow

Kind = Literal["change", "isolation", "finding", "link"]
KINDS: tuple[Kind, ...] = ("change", "isolation", "finding", "link")
# The standard workflow that switches a host's traffic to another link: marked apart from
# other changes, since a link curve changes shape when it runs.
LINK_WORKFLOW = "shift-link"
RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
MAX_SPAN = timedelta(days=31)  # the longest chart (repair metrics) spans 30 days
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


class AnnotationRead(BaseModel):
    """One mark on a time axis and the page it opens."""

    kind: Kind
    at: datetime
    event: str  # started, finished, ended, out of service, back in service, opened
    title: str
    detail: str  # the change's state, the finding's severity, the move's states
    severity: str | None = None
    href: str


class AnnotationPage(BaseModel):
    """The marks of a range, oldest first; `truncated` when more happened than `limit`."""

    since: datetime
    until: datetime
    kinds: list[Kind]
    limit: int
    truncated: bool
    items: list[AnnotationRead]


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC."""

    start: datetime
    end: datetime


# --- gathering ----------------------------------------------------------------------------------


def gather(
    session: Session, *, window: Window, kinds: Iterable[Kind], limit: int = DEFAULT_LIMIT
) -> AnnotationPage:
    """The marks of `window` of the given kinds: the latest `limit`, oldest first."""
    wanted = [k for k in KINDS if k in set(kinds)]
    found: list[AnnotationRead] = []
    start, end, most = window.start, window.end, limit + 1
    if "change" in wanted or "link" in wanted:
        rows = changes.started_or_finished(session, start=start, end=end, limit=most)
        found += _changes(rows, wanted, window)
    if "isolation" in wanted:
        found += _isolations(devices.service_moves(session, start=start, end=end, limit=most))
    if "finding" in wanted:
        found += _findings(findings.opened_between(session, start=start, end=end, limit=most))
    found.sort(key=lambda a: a.at)
    return AnnotationPage(
        since=window.start,
        until=window.end,
        kinds=wanted,
        limit=limit,
        truncated=len(found) > limit,
        items=found[-limit:],
    )


def _changes(
    rows: list[changes.TimedChange], wanted: list[Kind], window: Window
) -> list[AnnotationRead]:
    out = []
    for row in rows:
        kind: Kind = "link" if row.workflow == LINK_WORKFLOW else "change"
        if kind not in wanted:
            continue
        ended = "finished" if row.state == ChangeState.SUCCEEDED else "ended"
        for event, at in (("started", row.started_at), (ended, row.finished_at)):
            if at is not None and window.start <= at < window.end:
                out.append(
                    AnnotationRead(
                        kind=kind,
                        at=at,
                        event=event,
                        title=f"#{row.id} {row.title}",
                        detail=row.state.replace("_", " "),
                        href=f"/changes/{row.id}",
                    )
                )
    return out


def _isolations(rows: list[tuple[DeviceTransition, str]]) -> list[AnnotationRead]:
    back = {s.value for s in devices.SERVING}
    return [
        AnnotationRead(
            kind="isolation",
            at=move.at,
            event="back in service" if move.to_state in back else "out of service",
            title=f"{hostname}: {move.from_state} → {move.to_state}".replace("_", " "),
            detail=move.reason,
            href=f"/devices/{quote(hostname, safe='')}",
        )
        for move, hostname in rows
    ]


def _findings(rows: list[Finding]) -> list[AnnotationRead]:
    return [
        AnnotationRead(
            kind="finding",
            at=f.first_seen,
            event="opened",
            title=f.title,
            detail=f.severity,
            severity=f.severity,
            href=f"/findings/{f.id}",
        )
        for f in rows
    ]


# --- the API ------------------------------------------------------------------------------------

router = APIRouter(tags=["annotations"], responses=ERROR_RESPONSES)

Since = Annotated[
    Instant | None,
    Query(alias="from", description="range start (ISO 8601; naive = UTC); not with `range`"),
]
Until = Annotated[Instant | None, Query(alias="to", description="range end; default now")]
Last = Annotated[
    Literal["15m", "1h", "6h", "24h", "7d", "30d"] | None,
    Query(alias="range", description="the last 15m, 1h, 6h, 24h, 7d or 30d (default 24h)"),
]
KIND_LIST = r"^(change|isolation|finding|link)(,(change|isolation|finding|link))*$"
KindsParam = Annotated[
    str,
    Query(
        max_length=64,
        pattern=KIND_LIST,
        description="comma-separated: change, isolation, finding, link",
    ),
]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many marks")]


class InvalidWindow(BadRequest):
    """Parameters each valid, together not a range (both `range` and `from`, `to` before
    `from`, too long): 400, as the diagnosis API answers them; 422 is for a value's shape."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}", extra={"parameter": name})


def window_of(since: datetime | None, until: datetime | None, last: str | None) -> Window:
    """The range asked for; 400 when `range` comes with `from`/`to`, is reversed or too long."""
    if last is not None and (since is not None or until is not None):
        raise InvalidWindow("range", "give either `range` or `from`/`to`, not both")
    end = _utc(until, "to") if until is not None else utcnow()
    start = _utc(since, "from") if since is not None else end - RANGES[last or DEFAULT_RANGE]
    if start >= end:
        raise InvalidWindow("to", "`to` must be after `from`")
    if end - start > MAX_SPAN:
        raise InvalidWindow(
            "from", f"a range spans at most {MAX_SPAN.days} days; narrow `from`/`to`"
        )
    return Window(start, end)


def _utc(moment: datetime, name: str) -> datetime:
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidWindow(name, "out of the representable time range") from None


def kinds_of(value: str) -> list[Kind]:
    """`change,finding` as kinds (the parameter's pattern refused any other with a 422)."""
    names = set(value.split(","))
    return [k for k in KINDS if k in names] or list(KINDS)


@router.get("/annotations", response_model=AnnotationPage)
def list_annotations(
    session: SessionDep,
    _: Viewer,
    since: Since = None,
    until: Until = None,
    last: Last = None,
    kinds: KindsParam = ",".join(KINDS),
    limit: LimitParam = DEFAULT_LIMIT,
) -> AnnotationPage:
    """Events to mark on time charts: changes started and finished, devices taken out of
    service or brought back, findings opened, and link switches (changes of the `shift-link`
    workflow), each with the page it links to; oldest first, the latest `limit` of the range."""
    window = window_of(since, until, last)
    return gather(session, window=window, kinds=kinds_of(kinds), limit=limit)
