"""The web UI of change management: change list and detail, votes and controls, live progress.

Pages read without JavaScript; `static/changes.js` only follows `GET /changes/{id}/events` (SSE)
and swaps in the live fragment. Forms post to the same service functions as the JSON API, with the
session's CSRF token; a refusal is shown on the page (and a refused vote audited), not as a crash.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fleetops.auth.dependencies import Principal, SessionDep, audit_context
from fleetops.auth.roles import Role
from fleetops.changes import repository, service
from fleetops.changes.enums import ChangeState, HostRunState
from fleetops.changes.exceptions import ApprovalRefused, ChangeNotFound, WorkflowNotFound
from fleetops.changes.repository import change_read
from fleetops.changes.routes import ChangeId
from fleetops.changes.schemas import ChangeRead
from fleetops.changes.specs import SpecError
from fleetops.dashboard.render import PageUser, form_action, pager
from fleetops.dashboard.render import page as render_page
from fleetops.db import session_scope
from fleetops.errors import AppError, PermissionDenied
from fleetops.kit.pagination import MAX_OFFSET, paginate
from fleetops.models import Approval, ChangeRequest, HostRun, StepRun, Workflow

router = APIRouter(include_in_schema=False)

S = ChangeState
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
PAGE_SIZES = (25, 50, 100, 250)
VOTES = ("approve", "reject")
CONTROLS = ("pause", "resume", "retry", "cancel", "abort")
# What a redirect after a successful form says; a fixed text per action, never from the URL.
DONE = {
    "approve": "Your approval is recorded.",
    "reject": "You rejected this change.",
    "pause": "Paused: hosts in flight finish their current step, no new batch starts.",
    "resume": "Resumed.",
    "retry": "The failed hosts are queued again.",
    "cancel": "Cancelled.",
    "abort": "Aborting: the hosts already done are rolled back where the workflow says so.",
}
# Badge colours of change, host-run and step states and of risk classes; any other is muted.
TONES = {
    **dict.fromkeys(("succeeded", "satisfied", "low"), "ok"),
    **dict.fromkeys(("approved", "scheduled", "running"), "info"),
    **dict.fromkeys(("pending_approval", "paused", "aborting", "rolled_back", "medium"), "warn"),
    **dict.fromkeys(("failed", "aborted", "rejected", "rollback_failed", "high"), "bad"),
}
# Host-run states in the order progress bars stack them: done first, waiting last.
H = HostRunState
HOST_ORDER = (H.SUCCEEDED, H.ROLLED_BACK, H.FAILED, H.ROLLBACK_FAILED, H.RUNNING, H.CANCELLED)


def tone(state: str) -> str:
    return TONES.get(state, "muted")


def by_progress(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Host-run counts in bar order; unknown states just before `pending`, which comes last."""
    rank: dict[str, int] = {s.value: i for i, s in enumerate(HOST_ORDER)}
    return sorted(counts.items(), key=lambda kv: (kv[0] == H.PENDING, rank.get(kv[0], 99), kv[0]))


def page(
    request: Request, name: str, who: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    helpers = {"tone": tone, "by_progress": by_progress}
    return render_page(request, name, who, status_code, **helpers, **context)


def _change(session: Session, change_id: int) -> ChangeRequest:
    change = service.get_change(session, change_id)
    if change is None:
        raise ChangeNotFound(f"change {change_id} not found")
    return change


# --- list -------------------------------------------------------------------------------------


@router.get("/changes", response_class=HTMLResponse)
def change_list(
    request: Request,
    session: SessionDep,
    who: PageUser,
    state: Annotated[str, Query(max_length=32)] = "",
    requester: Annotated[str, Query(max_length=128)] = "",
    limit: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """Change requests, newest first, filtered by state and requester (all in the URL)."""
    requester = requester.strip()
    stmt = repository.list_query(state=state, requester=requester)
    rows, total = paginate(session, stmt, limit=limit, offset=offset)
    params = {"state": state, "requester": requester, "limit": limit if limit != 50 else ""}
    return page(
        request,
        "changes/list.html",
        who,
        changes=repository.change_reads(session, rows),
        total=total,
        state=state,
        requester=requester,
        limit=limit,
        params=params,
        pager=pager(total, limit, offset),
        states=list(ChangeState),
        page_sizes=PAGE_SIZES,
    )


# --- detail and its live fragment ---------------------------------------------------------------


@dataclass
class StageView:
    """One stage of the plan: its steps and its batches of host runs, in order."""

    index: int
    name: str
    steps: list[str]
    batches: list[tuple[int, list[HostRun]]] = field(default_factory=list)


def _stage_names(session: Session, change: ChangeRequest) -> list[tuple[str, list[str]]]:
    """Each stage's name and operations, from the pinned workflow version."""
    workflow = service.workflow_of(session, change)
    if workflow is None:  # `fleetops exec`: one ad-hoc command, no workflow
        return [("ad-hoc", ["exec"])]
    try:
        spec = service.workflow_spec(workflow)
    except SpecError:  # it parsed when registered; should it ever stop, show stage numbers
        return []
    # a host's steps include the checks of the verify stages that roll with its stage
    return [
        (stage.name, [step.operation for step in spec.host_steps(i)])
        for i, stage in enumerate(spec.stages)
    ]


def _stages(session: Session, change: ChangeRequest) -> list[StageView]:
    runs = service.host_runs(session, change)  # ordered by stage, batch, hostname
    names = _stage_names(session, change)
    stages = [
        StageView(i, *(names[i] if i < len(names) else (f"stage {i + 1}", [])))
        for i in sorted({r.stage_index for r in runs})
    ]
    for stage in stages:
        mine = [r for r in runs if r.stage_index == stage.index]
        stage.batches = [(b, list(hs)) for b, hs in groupby(mine, key=lambda r: r.batch_index)]
    return stages


def allowed_actions(change: ChangeRead, who: Principal, *, voted: bool) -> list[str]:
    """The buttons this viewer gets; the services still decide (a stale page can be refused).

    An ad-hoc command runs from its caller's terminal, so the page offers no control over it.
    """
    state = ChangeState(change.state)
    if change.kind == "adhoc":
        return []
    operator = who.can(Role.OPERATOR)
    mine = change.requester == who.username
    out: list[str] = []
    if operator and state == S.PENDING_APPROVAL and not mine and not voted:
        out += VOTES
    if operator and state == S.RUNNING:
        out.append("pause")
    if operator and state == S.PAUSED:
        out.append("resume")
    if operator and state in (S.FAILED, S.ABORTED) and change.hosts_by_state.get(H.FAILED):
        out.append("retry")
    cancellable = (S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.SCHEDULED, S.RUNNING, S.PAUSED)
    if (operator or mine) and state in cancellable:
        out.append("cancel")
    if operator and state in (S.RUNNING, S.PAUSED):
        out.append("abort")
    return out


def _live(session: Session, who: Principal, change: ChangeRequest) -> dict[str, Any]:
    """What the live fragment shows: state, approvals, the viewer's actions and the grid."""
    view = change_read(session, change)
    votes = service.approvals(session, change)
    voted = any(v.approver == who.username for v in votes)
    return {
        "change": view,
        "votes": votes,
        "actions": allowed_actions(view, who, voted=voted),
        "stages": _stages(session, change),
    }


def _detail(
    request: Request,
    session: Session,
    who: Principal,
    change_id: int,
    *,
    flash: tuple[str, str] | None = None,
    comment: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    change = _change(session, change_id)
    workflow = service.workflow_of(session, change)
    previous = service.previous_version(session, workflow) if workflow else None
    return page(
        request,
        "changes/detail.html",
        who,
        status_code=status_code,
        flash=flash,
        comment=comment,
        workflow=workflow,
        previous_version=previous.version if previous else None,
        workflow_diff=_diff(previous, workflow) if previous and workflow else "",
        commands=service.preview(session, change, request.app.state.library),
        **_live(session, who, change),
    )


def _diff(before: Workflow, after: Workflow) -> str:
    """What changed in the workflow since its previous version, as an approver reads it."""
    lines = difflib.unified_diff(
        before.source.splitlines(keepends=True),
        after.source.splitlines(keepends=True),
        fromfile=f"{before.name}@{before.version} {before.digest}",
        tofile=f"{after.name}@{after.version} {after.digest}",
    )
    return "".join(lines)


@router.get("/changes/{change_id}", response_class=HTMLResponse)
def change_detail(
    request: Request,
    change_id: ChangeId,
    session: SessionDep,
    who: PageUser,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """A change: what, why, who approved, what the viewer may do and every host's progress."""
    flash = ("ok", DONE[done]) if done in DONE else None
    return _detail(request, session, who, change_id, flash=flash)


@router.get("/changes/{change_id}/progress", response_class=HTMLResponse)
def change_progress(
    request: Request, change_id: ChangeId, session: SessionDep, who: PageUser
) -> HTMLResponse:
    """The live part of the detail page alone, fetched again on every progress event."""
    change = _change(session, change_id)
    return page(request, "changes/progress.html", who, **_live(session, who, change))


# --- votes and controls -------------------------------------------------------------------------


def _apply(
    session: Session, request: Request, who: Principal, change_id: int, action: str, comment: str
) -> None:
    change = _change(session, change_id)
    ctx = audit_context(request, who)
    if action in VOTES:
        service.vote(
            session, ctx, change, role=who.role, approve=action == "approve", comment=comment
        )
        return
    if not (who.can(Role.OPERATOR) or (action == "cancel" and change.requester == who.username)):
        raise PermissionDenied(f"{action} needs the operator role; you act as {who.role}")
    service.control(session, ctx, change, action, reason=comment)


@router.post("/changes/{change_id}/action", response_class=HTMLResponse)
def change_action(
    request: Request,
    change_id: ChangeId,
    who: PageUser,
    action: Annotated[str, Form(pattern=f"^({'|'.join(VOTES + CONTROLS)})$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Vote or control a change from its page, then show the page again (POST-redirect-GET)."""
    comment = comment.strip()

    def record_refused_vote(exc: AppError) -> None:
        # Rolled back with the vote; four-eyes violations still leave a trace, in their own commit.
        if isinstance(exc, ApprovalRefused):
            with session_scope(request.app.state.write_sessions) as own:
                service.record_refused_vote(
                    own,
                    audit_context(request, who),
                    change_id,
                    approve=action == "approve",
                    why=exc.detail,
                )

    def refused(session: Session, exc: AppError) -> Response:
        """The change page with the refusal on top and the comment kept, under its status."""
        flash = ("bad", exc.detail)
        return _detail(
            request,
            session,
            who,
            change_id,
            flash=flash,
            comment=comment,
            status_code=exc.status_code,
        )

    return form_action(
        request,
        who,
        csrf=csrf,
        act=lambda session, _ctx: _apply(session, request, who, change_id, action, comment),
        done=f"/changes/{change_id}?done={action}",
        refused=refused,
        role=None,  # by action: votes by the approver rules, controls by operators or requester
        after_refusal=record_refused_vote,
    )


# --- live progress (SSE) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything whose change the detail page shows; two equal snapshots need no event."""

    state: str
    status: str
    approvals: int
    hosts: tuple[tuple[int, str, int], ...]  # (host run id, state, next step)

    @property
    def terminal(self) -> bool:
        return ChangeState(self.state).terminal

    def event(self, seq: int) -> str:
        data = {
            "state": self.state,
            "status": self.status,
            "approvals": self.approvals,
            "terminal": self.terminal,
            "hosts_by_state": dict(Counter(state for _, state, _ in self.hosts)),
        }
        return f"id: {seq}\nevent: progress\ndata: {json.dumps(data)}\n\n"


def snapshot(sessions: sessionmaker[Session], change_id: int) -> Snapshot | None:
    """Read the change's progress in one short read transaction (run in a worker thread)."""
    with sessions() as session:
        head = session.execute(
            select(ChangeRequest.state, ChangeRequest.status_reason).where(
                ChangeRequest.id == change_id
            )
        ).first()
        if head is None:
            return None
        hosts = session.execute(
            select(HostRun.id, HostRun.state, HostRun.step_index)
            .where(HostRun.change_id == change_id)
            .order_by(HostRun.id)
        ).all()
        votes = session.scalar(
            select(func.count()).select_from(Approval).where(Approval.change_id == change_id)
        )
    return Snapshot(
        head.state, head.status_reason, votes or 0, tuple((i, st, n) for i, st, n in hosts)
    )


async def progress_events(
    request: Request,
    sessions: sessionmaker[Session],
    change_id: int,
    *,
    poll: float = POLL_SECONDS,
    keepalive: float = KEEPALIVE_SECONDS,
) -> AsyncGenerator[str, None]:
    """Yield an SSE event per visible change, a comment when quiet; end once terminal is sent."""
    last: Snapshot | None = None
    seq, quiet = 0, 0.0
    while not await request.is_disconnected():
        now = await asyncio.to_thread(snapshot, sessions, change_id)
        if now is None:  # deleted under us: nothing more will happen
            return
        if now != last:
            seq, last, quiet = seq + 1, now, 0.0
            yield now.event(seq)
            if now.terminal:
                return
        elif quiet >= keepalive:
            quiet = 0.0
            yield ": keep-alive\n\n"  # keeps proxies from closing an idle stream
        await asyncio.sleep(poll)
        quiet += poll


@router.get("/changes/{change_id}/events")
async def change_events(request: Request, change_id: ChangeId, who: PageUser) -> Response:
    """Server-sent events: one `progress` event whenever the change or one of its hosts moves."""
    sessions: sessionmaker[Session] = request.app.state.read_sessions
    if await asyncio.to_thread(snapshot, sessions, change_id) is None:
        raise ChangeNotFound(f"change {change_id} not found")
    return StreamingResponse(
        progress_events(request, sessions, change_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# --- one host's steps ---------------------------------------------------------------------------


@router.get("/changes/{change_id}/hosts/{hostname}", response_class=HTMLResponse)
def change_host(
    request: Request, change_id: ChangeId, hostname: str, session: SessionDep, who: PageUser
) -> HTMLResponse:
    """What the engine did on one host for this change: every phase, attempt and its output."""
    change = _change(session, change_id)
    runs = session.scalars(
        select(HostRun)
        .where(HostRun.change_id == change_id, HostRun.hostname == hostname)
        .order_by(HostRun.stage_index)
    ).all()
    if not runs:
        raise ChangeNotFound(f"change {change_id} does not target {hostname!r}")
    steps = session.scalars(
        select(StepRun).where(StepRun.host_run_id.in_([r.id for r in runs])).order_by(StepRun.id)
    ).all()
    names = dict(enumerate(name for name, _ in _stage_names(session, change)))
    return page(
        request,
        "changes/host.html",
        who,
        change=change_read(session, change),
        hostname=hostname,
        runs=[
            (r, names.get(r.stage_index), [s for s in steps if s.host_run_id == r.id]) for r in runs
        ],
    )


# --- workflows ----------------------------------------------------------------------------------


@router.get("/workflows", response_class=HTMLResponse)
def workflow_list(request: Request, session: SessionDep, who: PageUser) -> HTMLResponse:
    """Registered workflows, latest version of each."""
    return page(request, "changes/workflows.html", who, workflows=service.list_workflows(session))


@router.get("/workflows/{name}", response_class=HTMLResponse)
def workflow_detail(
    request: Request,
    name: str,
    session: SessionDep,
    who: PageUser,
    version: Annotated[int | None, Query(ge=1, le=MAX_OFFSET)] = None,
) -> HTMLResponse:
    """One workflow version's YAML exactly as registered, with links to its other versions."""
    row = service.get_workflow(session, name=name, version=version)
    if row is None:
        raise WorkflowNotFound(
            f"workflow {name!r}" + (f" version {version}" if version else "") + " not found"
        )
    versions = session.scalars(
        select(Workflow.version).where(Workflow.name == name).order_by(Workflow.version.desc())
    ).all()
    return page(request, "changes/workflow.html", who, workflow=row, versions=versions)
