"""Network JSON API: the suspects of a slow rack link, and proposing a link switch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from fleetops.auth.dependencies import Developer, SessionDep, Viewer, audit_context
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.repository import change_read
from fleetops.changes.schemas import ChangeRead
from fleetops.errors import ERROR_RESPONSES
from fleetops.network import service
from fleetops.network.schemas import LinkSuspects, LinkSwitchCreate

router = APIRouter(tags=["network"], responses=ERROR_RESPONSES)
RackName = Annotated[str, Query(min_length=1, max_length=64)]


@router.get("/network/suspects", response_model=LinkSuspects)
def link_suspects(session: SessionDep, _: Viewer, src: RackName, dst: RackName) -> LinkSuspects:
    """Of a slow rack pair, which rack's ToR is the likelier culprit, from the last five
    minutes of link rollups, and which management hosts can act on it."""
    return service.suspects(session, src, dst, datetime.now(UTC))


@router.post(
    "/network/link-switches", response_model=ChangeRead, status_code=status.HTTP_201_CREATED
)
def propose_link_switch(
    body: LinkSwitchCreate, request: Request, session: SessionDep, who: Developer
) -> ChangeRead:
    """Propose draining a switch link: a `shift-link` change on a management host, awaiting
    approval. 404 for a switch not in the inventory; 409 without a management host."""
    settings = request.app.state.settings
    change = service.propose(
        session,
        audit_context(request, who),
        body,
        interface=settings.link_switch_interface,
        library=request.app.state.library,
        policy=ApprovalPolicy.of(settings),
    )
    return change_read(session, change)
