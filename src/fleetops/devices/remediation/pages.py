"""The remediation page: each rule with its mode, budget and record, what it did and would have
done (dry run), and, for admins, the buttons that switch its mode."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.auth.dependencies import Principal, SessionDep
from fleetops.auth.roles import Role
from fleetops.dashboard.render import PageUser, form_action, page, pager
from fleetops.devices.enums import RuleMode
from fleetops.devices.remediation import service
from fleetops.devices.remediation.routes import rules_read
from fleetops.errors import AppError
from fleetops.kit.pagination import MAX_OFFSET, paginate

router = APIRouter(include_in_schema=False)
LISTED = 50


@router.get("/remediation", response_class=HTMLResponse)
def remediation_page(
    request: Request, session: SessionDep, who: PageUser, offset: int = 0
) -> HTMLResponse:
    """The rules and their actions, newest first."""
    return _page(request, session, who, offset=min(max(offset, 0), MAX_OFFSET))


def _page(
    request: Request,
    session: Session,
    who: Principal,
    *,
    offset: int = 0,
    flash: tuple[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    actions, total = paginate(session, service.actions_query(), limit=LISTED, offset=offset)
    return page(
        request,
        "devices/remediation.html",
        who,
        status_code=status_code,
        rules=rules_read(request, session),
        actions=actions,
        total=total,
        pages=pager(total, LISTED, offset),
        modes=list(RuleMode),
        can_switch=who.can(Role.ADMIN),
        flash=flash,
    )


@router.post("/remediation/{name}/mode", response_class=HTMLResponse)
def switch_mode(
    request: Request,
    who: PageUser,
    name: Annotated[str, Path(max_length=64)],
    csrf: Annotated[str, Form(max_length=256)] = "",
    mode: Annotated[RuleMode, Form()] = RuleMode.DRY_RUN,
) -> Response:
    """Set a rule's mode (admins), then show the page again."""

    def act(session: Session, ctx: AuditContext) -> None:
        service.set_mode(session, ctx, request.app.state.remediation, name, mode)

    def refused(session: Session, exc: AppError) -> Response:
        return _page(request, session, who, flash=("bad", exc.detail), status_code=exc.status_code)

    return form_action(
        request,
        who,
        csrf=csrf,
        act=act,
        done="/remediation",
        refused=refused,
        role=Role.ADMIN,
        needs="switching a remediation rule",
    )
