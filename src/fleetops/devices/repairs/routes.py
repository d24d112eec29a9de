"""Repair tickets JSON API: the queue (filters, counts), one ticket, and status updates from whoever
repairs (operators, or a ticket system holding an operator's API token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from fleetops.auth.dependencies import Operator, SessionDep, Viewer, audit_context
from fleetops.devices.config import lifecycle_config
from fleetops.devices.enums import TicketStatus
from fleetops.devices.lifecycle.service import ticket_updated
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import TicketUpdate
from fleetops.devices.schemas import TicketPage, TicketRead, TicketUpdateBody
from fleetops.errors import ERROR_RESPONSES
from fleetops.kit.pagination import MAX_OFFSET, Limit, Offset
from fleetops.models import RepairTicket, utcnow

router = APIRouter(prefix="/repairs", tags=["repairs"], responses=ERROR_RESPONSES)
TicketId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]


def ticket_read(ticket: RepairTicket, hostname: str) -> TicketRead:
    live = not TicketStatus(ticket.status).closed
    return TicketRead(
        **repairs.ticket_json(ticket, hostname), overdue=live and ticket.sla_due < utcnow()
    )


@router.get("", response_model=TicketPage)
def list_tickets(
    session: SessionDep,
    _: Viewer,
    status: Annotated[list[TicketStatus] | None, Query()] = None,
    host: Annotated[str | None, Query(max_length=253)] = None,
    overdue: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> TicketPage:
    """Tickets, newest first; `status` repeats; `overdue` keeps live tickets past their SLA."""
    rows, total = repairs.query(
        session, statuses=status, hostname=host, overdue=overdue, limit=limit, offset=offset
    )
    return TicketPage(
        items=[ticket_read(t, h) for t, h in rows],
        total=total,
        limit=limit,
        offset=offset,
        counts=repairs.counts(session),
    )


@router.get("/{ticket_id}", response_model=TicketRead)
def get_ticket(ticket_id: TicketId, session: SessionDep, _: Viewer) -> TicketRead:
    ticket = repairs.get(session, ticket_id)
    return ticket_read(ticket, repairs.hostname_of(session, ticket))


@router.post("/{ticket_id}/status", response_model=TicketRead)
def update_ticket(
    ticket_id: TicketId,
    body: TicketUpdateBody,
    request: Request,
    session: SessionDep,
    who: Operator,
) -> TicketRead:
    """Report progress. `repaired` starts verification (the device returns to service only if it
    passes); `failed` gives up on this rung and opens the next. 409 names the allowed statuses."""
    ticket = repairs.get(session, ticket_id, lock=True)
    config = lifecycle_config(request.app.state.settings, request.app.state.library)
    ticket = ticket_updated(
        session,
        audit_context(request, who),
        ticket,
        TicketUpdate(
            status=body.status,
            note=body.note,
            vendor=body.vendor,
            rma_number=body.rma_number,
            part=body.part,
            external_ref=body.external_ref,
        ),
        config=config,
    )
    return ticket_read(ticket, repairs.hostname_of(session, ticket))
