"""The web UI of devices: the lifecycle board, a device's timeline, the repair queue and metrics.

The board shows one column per lifecycle state (in graph order) with what is out of service above
it, and follows the fleet live: `static/devices.js` fetches the board's fragment every few seconds
and swaps the columns whose content changed. Forms post with the session's CSRF token to the same
services as the JSON API (`devices.service.move`, `devices.lifecycle.service.ticket_updated`); a
refusal is shown on the page with the rule's message, not as a crash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, NamedTuple
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.auth.dependencies import Principal, SessionDep
from fleetops.auth.roles import Role
from fleetops.dashboard.render import PageUser, RefreshParam, form_action, pager, refresh_choice
from fleetops.dashboard.render import page as render_page
from fleetops.devices import service
from fleetops.devices.config import lifecycle_config
from fleetops.devices.enums import Lifecycle, TicketStatus
from fleetops.devices.exceptions import DeviceNotFound
from fleetops.devices.lifecycle.service import ticket_updated
from fleetops.devices.metrics import service as metrics
from fleetops.devices.page_format import HELPERS, Sla, sla, ticket_tone
from fleetops.devices.policy.safety import OUT_OF_SERVICE
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import EXTERNAL, LIVE, TicketUpdate
from fleetops.devices.states import next_states
from fleetops.errors import AppError, BadRequest
from fleetops.inventory.selectors import SelectorError
from fleetops.kit.pagination import MAX_OFFSET
from fleetops.models import Host, Rack, RepairTicket, utcnow

router = APIRouter(include_in_schema=False)

POLL_SECONDS = 5
COLUMN_CAP = 12
LIST_LIMIT = 50
HISTORY_LIMIT = 100
LIVE_CAP = 500
CLOSED_LIMIT = 25
HOURS = (6, 24, 72, 168, 720)
WINDOW_DAYS = 30
DONE = {
    "moved": "Moved: the transition is in the history below and in the audit log.",
    "updated": "Ticket updated: the note and fields are kept below, and the change is audited.",
}
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Done = Annotated[str, Query(max_length=16)]
Selector = Annotated[str, Query(max_length=4096)]
TicketId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]
Hostname = Annotated[str, Path(max_length=253)]


def page(
    request: Request, name: str, who: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render_page(
        request, name, who, status_code, ticket_tone=ticket_tone, **HELPERS, **context
    )


def _flash(done: str) -> tuple[str, str] | None:
    return ("ok", DONE[done]) if done in DONE else None


def _racks(session: Session, hostnames: Sequence[str]) -> dict[str, str | None]:
    """Where each device sits, for the board's cards."""
    if not hostnames:
        return {}
    rows = session.execute(
        select(Host.hostname, Rack.name)
        .outerjoin(Rack, Rack.id == Host.rack_id)
        .where(Host.hostname.in_(hostnames))
    )
    found: dict[str, str | None] = dict(rows.all())
    return found


def _key(*parts: object) -> str:
    """A short fingerprint of what a live part shows: the script swaps a part when it differs."""
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


# --- the board -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    device: service.Device
    rack: str | None


@dataclass(frozen=True)
class Column:
    state: Lifecycle
    total: int
    cards: list[Card]

    @property
    def more(self) -> int:
        return self.total - len(self.cards)

    @property
    def key(self) -> str:
        return _key(
            self.state,
            self.total,
            *(f"{c.device.hostname}@{c.device.since.isoformat()}" for c in self.cards),
        )


@dataclass(frozen=True)
class Strip:
    """The figures above the board: capacity out of service, the ticket load, time to repair."""

    capacity: metrics.Capacity
    tickets: metrics.TicketLoad
    mttr: metrics.Mttr

    @property
    def key(self) -> str:
        return _key(self.capacity.model_dump_json(), self.tickets, self.mttr)


def _columns(session: Session, selector: str | None, counts: dict[str, int]) -> list[Column]:
    columns: list[tuple[Lifecycle, list[service.Device]]] = []
    for state in Lifecycle:
        rows: list[service.Device] = []
        if counts.get(state.value):
            rows, _ = service.query(
                session, state=state, selector=selector, limit=COLUMN_CAP, offset=0
            )
        columns.append((state, rows))
    racks = _racks(session, [d.hostname for _, rows in columns for d in rows])
    return [
        Column(state, counts.get(state.value, 0), [Card(d, racks.get(d.hostname)) for d in rows])
        for state, rows in columns
    ]


def _strip(session: Session, selector: str | None) -> Strip:
    now = utcnow()
    overall, _ = metrics.mttr(session, now=now, window=timedelta(days=WINDOW_DAYS))
    return Strip(
        metrics.capacity(session, selector=selector),
        metrics.ticket_load(session, now=now),
        overall,
    )


@router.get("/devices", response_class=HTMLResponse)
def board(
    request: Request,
    session: SessionDep,
    who: PageUser,
    selector: Selector = "",
    state: Annotated[str, Query(max_length=32)] = "",
    offset: Offset = 0,
    fragment: Annotated[str, Query(max_length=1)] = "",
) -> HTMLResponse:
    """Every device by lifecycle state, with what is out of service and the repair load; with
    `state`, the full list of that state. `selector` narrows both (e.g. `rack=r01`)."""
    selector = selector.strip()
    chosen = _state(state)
    error, counts = None, {s.value: 0 for s in Lifecycle}
    columns: list[Column] = []
    rows: list[Card] = []
    total = 0
    try:
        counts = service.counts(session, selector=selector or None)
        strip = _strip(session, selector or None)
        if chosen is None:
            columns = _columns(session, selector or None, counts)
        else:
            found, total = service.query(
                session, state=chosen, selector=selector or None, limit=LIST_LIMIT, offset=offset
            )
            racks = _racks(session, [d.hostname for d in found])
            rows = [Card(d, racks.get(d.hostname)) for d in found]
    except SelectorError as exc:
        error = exc.detail
        strip = _strip(session, None)
    params = {"selector": selector, "state": chosen.value if chosen else ""}
    name = "devices/list.html" if chosen else "devices/board.html"
    if fragment and not chosen:
        name = "devices/_board.html"
    return page(
        request,
        name,
        who,
        status_code=400 if error else 200,
        error=error,
        selector=selector,
        state=chosen,
        params=params,
        counts=counts,
        columns=columns,
        rows=rows,
        total=total,
        strip=strip,
        pager=pager(total, LIST_LIMIT, offset),
        limit=LIST_LIMIT,
        out_of_service=[s.value for s in OUT_OF_SERVICE],
        poll=POLL_SECONDS,
        window_days=WINDOW_DAYS,
    )


def _state(value: str) -> Lifecycle | None:
    value = value.strip()
    if not value:
        return None
    try:
        return Lifecycle(value)
    except ValueError:
        names = " | ".join(s.value for s in Lifecycle)
        raise BadRequest(f"state must be one of {names}, not {value!r}") from None


# --- one device ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoveForm:
    """What the transition form sent, kept when the move is refused."""

    to: str = ""
    reason: str = ""
    evidence: str = ""
    override: bool = False


def _timeline(
    request: Request,
    session: Session,
    who: Principal,
    hostname: str,
    *,
    offset: int = 0,
    flash: tuple[str, str] | None = None,
    form: MoveForm | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    device = service.get(session, hostname=hostname)
    if device is None:
        raise DeviceNotFound(f"host {hostname!r} not found")
    steps, total = service.history(session, hostname=hostname, limit=HISTORY_LIMIT, offset=offset)
    tickets, ticket_total = repairs.query(session, hostname=hostname, limit=50, offset=0)
    now = utcnow()
    regular = next_states(device.state)
    others = [s for s in Lifecycle if s not in regular and s is not device.state]
    return page(
        request,
        "devices/timeline.html",
        who,
        status_code=status_code,
        device=device,
        rack=_racks(session, [hostname]).get(hostname),
        steps=steps,
        total=total,
        pager=pager(total, HISTORY_LIMIT, offset),
        limit=HISTORY_LIMIT,
        tickets=_rows(tickets, now),
        ticket_total=ticket_total,
        regular=regular,
        others=others,
        operator=who.can(Role.OPERATOR),
        flash=flash,
        form=form or MoveForm(),
        now=now,
    )


@router.get("/devices/{hostname}", response_class=HTMLResponse)
def timeline(
    request: Request,
    hostname: Hostname,
    session: SessionDep,
    who: PageUser,
    offset: Offset = 0,
    done: Done = "",
) -> HTMLResponse:
    """One device: where it stands, every transition newest first, its repair tickets."""
    return _timeline(request, session, who, hostname, offset=offset, flash=_flash(done))


_IDS = re.compile(r"[\s,]+")


def parse_ids(text: str) -> list[int]:
    """Finding ids typed as `12, 15 17`; anything else is a 400 that names the bad part."""
    ids = []
    for part in filter(None, _IDS.split(text.strip())):
        if not part.isdigit() or not 0 < int(part) <= MAX_OFFSET:
            raise BadRequest(f"evidence: {part!r} is not a finding id (give ids like 12, 15)")
        ids.append(int(part))
    return ids


@router.post("/devices/{hostname}/transition", response_class=HTMLResponse)
def transition_form(
    request: Request,
    hostname: Hostname,
    who: PageUser,
    to: Annotated[str, Form(max_length=32)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    evidence: Annotated[str, Form(max_length=2000)] = "",
    override: Annotated[str, Form(max_length=8)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Move a device from its page (operators), then show it (POST-redirect-GET)."""
    form = MoveForm(to, reason, evidence, bool(override))

    def act(session: Session, ctx: AuditContext) -> None:
        target = _state(to)
        if target is None:
            raise BadRequest("choose the state to move to")
        service.move(
            session,
            ctx,
            hostname=hostname,
            to=target,
            reason=reason,
            evidence=parse_ids(evidence),
            override=form.override,
        )

    def refused(session: Session, exc: AppError) -> Response:
        flash = ("bad", exc.detail)
        return _timeline(
            request, session, who, hostname, flash=flash, form=form, status_code=exc.status_code
        )

    return form_action(
        request,
        who,
        csrf=csrf,
        act=act,
        done=f"/devices/{quote(hostname, safe='')}?done=moved",
        refused=refused,
        needs="moving a device",
    )


# --- repairs -------------------------------------------------------------------------------------


class TicketRow(NamedTuple):
    """A ticket in a table: the ticket, its device's hostname and its SLA standing."""

    ticket: RepairTicket
    host: str
    sla: Sla


def _rows(found: Sequence[tuple[RepairTicket, str]], now: datetime) -> list[TicketRow]:
    return [TicketRow(t, h, sla(t, now)) for t, h in found]


def _status(value: str) -> TicketStatus | None:
    value = value.strip()
    if not value:
        return None
    try:
        return TicketStatus(value)
    except ValueError:
        names = " | ".join(s.value for s in TicketStatus)
        raise BadRequest(f"status must be one of {names}, not {value!r}") from None


@router.get("/repairs", response_class=HTMLResponse)
def repair_queue(
    request: Request,
    session: SessionDep,
    who: PageUser,
    status: Annotated[str, Query(max_length=16)] = "",
    overdue: Annotated[str, Query(max_length=5)] = "",
    offset: Offset = 0,
) -> HTMLResponse:
    """The repair queue: live tickets first, most urgent SLA first, then the closed ones."""
    now = utcnow()
    chosen = _status(status)
    late = overdue in ("1", "true", "on")
    live: list[TicketRow] = []
    closed: list[TicketRow] = []
    total = 0
    if chosen is None:
        found, _ = repairs.query(
            session, statuses=LIVE, overdue=late, now=now, limit=LIVE_CAP, offset=0
        )
        live = sorted(_rows(found, now), key=lambda r: (r.ticket.sla_due, r.ticket.id))
        if not late:
            done = [s for s in TicketStatus if s.closed]
            found, total = repairs.query(session, statuses=done, limit=CLOSED_LIMIT, offset=offset)
            closed = _rows(found, now)
    else:
        found, total = repairs.query(
            session, statuses=[chosen], overdue=late, now=now, limit=CLOSED_LIMIT, offset=offset
        )
        (closed if chosen.closed else live).extend(_rows(found, now))
    params = {"status": chosen.value if chosen else "", "overdue": "1" if late else ""}
    return page(
        request,
        "repairs/queue.html",
        who,
        live=live,
        closed=closed,
        total=total,
        pager=pager(total, CLOSED_LIMIT, offset),
        limit=CLOSED_LIMIT,
        counts=repairs.counts(session),
        load=metrics.ticket_load(session, now=now),
        statuses=list(TicketStatus),
        status=chosen,
        overdue=late,
        params=params,
        filtered=bool(chosen or late),
    )


@router.get("/repairs/metrics", response_class=HTMLResponse)
def repair_metrics(
    request: Request,
    session: SessionDep,
    who: PageUser,
    hours: Annotated[int, Query(ge=1, le=metrics.MAX_HOURS)] = 24,
    refresh: RefreshParam = "",
) -> HTMLResponse:
    """Time to repair, repairs per model and rack, repeat failures, and the out-of-service
    capacity over the last `hours` (a chart drawn from /api/v1/repairs/metrics)."""
    window = timedelta(days=WINDOW_DAYS)
    figures = metrics.repair_metrics(session, now=utcnow(), hours=hours, window=window)
    return page(
        request,
        "repairs/metrics.html",
        who,
        m=figures,
        hours_choice=hours,
        hour_options=HOURS,
        refresh=refresh_choice(refresh, default="30s"),
        window_days=WINDOW_DAYS,
        peak=max(figures.series.points, key=lambda p: (p.devices, p.end), default=None),
        poll=POLL_SECONDS * 6,
    )


@dataclass(frozen=True)
class TicketForm:
    """What the ticket form sent, kept when the update is refused."""

    status: str = ""
    note: str = ""
    vendor: str | None = None
    rma_number: str | None = None
    part: str | None = None
    external_ref: str | None = None


def _ticket_page(
    request: Request,
    session: Session,
    who: Principal,
    ticket_id: int,
    *,
    flash: tuple[str, str] | None = None,
    form: TicketForm | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ticket = repairs.get(session, ticket_id)
    now = utcnow()
    allowed = EXTERNAL[TicketStatus(ticket.status)]
    return page(
        request,
        "repairs/ticket.html",
        who,
        status_code=status_code,
        ticket=ticket,
        host=repairs.hostname_of(session, ticket),
        sla=sla(ticket, now),
        next_statuses=[s for s in TicketStatus if s in allowed],
        operator=who.can(Role.OPERATOR),
        flash=flash,
        form=form or TicketForm(),
        now=now,
    )


@router.get("/repairs/{ticket_id}", response_class=HTMLResponse)
def ticket_detail(
    request: Request, ticket_id: TicketId, session: SessionDep, who: PageUser, done: Done = ""
) -> HTMLResponse:
    """One repair ticket: its device, rung, SLA, RMA fields and notes; operators update it."""
    return _ticket_page(request, session, who, ticket_id, flash=_flash(done))


def _changed(ticket: RepairTicket, name: str, value: str | None) -> str | None:
    """A field to set only if the form changed it (the audit then lists what really changed)."""
    if value is None or value.strip() == getattr(ticket, name):
        return None
    return value.strip()


@router.post("/repairs/{ticket_id}/update", response_class=HTMLResponse)
def ticket_form(
    request: Request,
    ticket_id: TicketId,
    who: PageUser,
    status: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=4000)] = "",
    vendor: Annotated[str | None, Form(max_length=255)] = None,
    rma_number: Annotated[str | None, Form(max_length=255)] = None,
    part: Annotated[str | None, Form(max_length=255)] = None,
    external_ref: Annotated[str | None, Form(max_length=255)] = None,
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Update a ticket from its page (operators): what the JSON status endpoint does."""
    form = TicketForm(status, note, vendor, rma_number, part, external_ref)
    config = lifecycle_config(request.app.state.settings, request.app.state.library)

    def act(session: Session, ctx: AuditContext) -> None:
        ticket = repairs.get(session, ticket_id, lock=True)
        change = TicketUpdate(
            status=_status(status),
            note=note.strip(),
            vendor=_changed(ticket, "vendor", vendor),
            rma_number=_changed(ticket, "rma_number", rma_number),
            part=_changed(ticket, "part", part),
            external_ref=_changed(ticket, "external_ref", external_ref),
        )
        ticket_updated(session, ctx, ticket, change, config=config)

    def refused(session: Session, exc: AppError) -> Response:
        flash = ("bad", exc.detail)
        return _ticket_page(
            request, session, who, ticket_id, flash=flash, form=form, status_code=exc.status_code
        )

    return form_action(
        request,
        who,
        csrf=csrf,
        act=act,
        done=f"/repairs/{ticket_id}?done=updated",
        refused=refused,
        needs="updating a ticket",
    )
