"""The link-switch page: a slow rack pair's suspects, and the form that proposes the change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.auth.dependencies import Principal, SessionDep
from fleetops.auth.roles import Role
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.dashboard.render import PageUser, form_action, page
from fleetops.errors import AppError
from fleetops.network import service
from fleetops.network.schemas import LinkSwitchCreate

router = APIRouter(include_in_schema=False)
RackName = Annotated[str, Path(min_length=1, max_length=64)]
SWITCH = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
INTERFACE = r"^[A-Za-z0-9][A-Za-z0-9/._:,-]*$"


def _page(
    request: Request,
    session: Session,
    who: Principal,
    src: str,
    dst: str,
    *,
    flash: tuple[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "network/switch.html",
        who,
        status_code=status_code,
        found=service.suspects(session, src, dst, datetime.now(UTC)),
        interface=request.app.state.settings.link_switch_interface,
        can_propose=who.can(Role.DEVELOPER),
        flash=flash,
    )


@router.get("/network/links/{src}/{dst}/switch", response_class=HTMLResponse)
def switch_page(
    request: Request, src: RackName, dst: RackName, session: SessionDep, who: PageUser
) -> HTMLResponse:
    """Which of the pair's ToRs to drain, with the evidence, and the form that proposes it."""
    return _page(request, session, who, src, dst)


@router.post("/network/links/{src}/{dst}/switch", response_class=HTMLResponse)
def propose_switch(
    request: Request,
    src: RackName,
    dst: RackName,
    who: PageUser,
    switch: Annotated[str, Form(pattern=SWITCH, max_length=64)],
    interface: Annotated[str, Form(pattern=INTERFACE, max_length=64)],
    via: Annotated[str, Form(min_length=1, max_length=253)],
    action: Annotated[str, Form(pattern="^(drain|restore)$")] = "drain",
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Propose the change, then open it: it waits there for another operator's approval."""
    settings = request.app.state.settings
    proposed: list[int] = []

    def act(session: Session, ctx: AuditContext) -> None:
        change = service.propose(
            session,
            ctx,
            LinkSwitchCreate(
                switch=switch,
                interface=interface,
                via=via,
                reason=reason if action == "drain" else "",  # the form's is the slowness
                action="restore" if action == "restore" else "drain",
            ),
            interface=settings.link_switch_interface,
            library=request.app.state.library,
            policy=ApprovalPolicy.of(settings),
        )
        session.flush()
        proposed.append(change.id)

    def refused(session: Session, exc: AppError) -> Response:
        return _page(
            request, session, who, src, dst, flash=("bad", exc.detail), status_code=exc.status_code
        )

    response = form_action(
        request,
        who,
        csrf=csrf,
        act=act,
        done="/changes",
        refused=refused,
        role=Role.DEVELOPER,
        needs="proposing a link switch",
    )
    if proposed and response.status_code == 303:
        response.headers["location"] = f"/changes/{proposed[0]}"
    return response
