"""Change management API: operations, workflows, change requests, votes, controls, freezes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.auth.dependencies import (
    Developer,
    Operator,
    Principal,
    SessionDep,
    Viewer,
    audit_context,
    record_refusal,
)
from fleetops.auth.roles import Role
from fleetops.changes import adhoc, repository, service
from fleetops.changes.approvals import ApprovalPolicy, Risk
from fleetops.changes.exceptions import (
    ApprovalRefused,
    ChangeNotFound,
    InvalidChange,
    WorkflowNameReserved,
    WorkflowNotFound,
)
from fleetops.changes.operations import OperationLibrary, OperationSpec, SpecError
from fleetops.changes.repository import change_read
from fleetops.changes.schemas import (
    AdhocResults,
    AdhocStart,
    AdhocStarted,
    AdhocTargetRead,
    ApprovalRead,
    ChangeCreate,
    ChangeDetail,
    ChangePage,
    ChangeRead,
    ControlBody,
    FreezeCreate,
    FreezeRead,
    HostRunRead,
    OperationRead,
    StepPreviewRead,
    StepRunRead,
    ValidationReport,
    Vote,
    WorkflowDetail,
    WorkflowRead,
    WorkflowSubmit,
)
from fleetops.changes.states import TransitionRefused
from fleetops.changes.targets import WITH_FACTS, target_of
from fleetops.changes.workflows import check_workflow, parse_workflow
from fleetops.db import session_scope
from fleetops.errors import ERROR_RESPONSES, NotFound, PermissionDenied
from fleetops.inventory.selectors import select_hosts
from fleetops.kit.pagination import MAX_OFFSET, Limit, Offset, paginate
from fleetops.models import ChangeRequest, FreezeWindow, HostRun, StepRun

router = APIRouter(tags=["changes"], responses=ERROR_RESPONSES)
ChangeId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]


def _library(request: Request) -> OperationLibrary:
    library: OperationLibrary = request.app.state.library
    return library


def _policy(request: Request) -> ApprovalPolicy:
    settings = request.app.state.settings
    return ApprovalPolicy.of(settings)


def _operation_read(op: OperationSpec) -> OperationRead:
    return OperationRead(
        name=op.name,
        version=op.version,
        description=op.description,
        risk=op.risk,
        kind=op.kind,
        idempotent=op.idempotent,
        timeout=op.timeout,
        params={k: p.model_dump(exclude_none=True) for k, p in op.params.items()},
        has_check=op.check is not None,
        has_verify=op.verify is not None,
        has_rollback=op.rollback is not None,
    )


@router.get("/operations", response_model=list[OperationRead])
def list_operations(request: Request, _: Viewer) -> list[OperationRead]:
    """The operations library: built-ins and the site's own (latest version of each)."""
    return [_operation_read(op) for op in _library(request).latest()]


@router.get("/operations/{name}", response_model=OperationRead)
def get_operation(name: str, request: Request, _: Viewer) -> OperationRead:
    """One operation."""
    op = _library(request).get(name)
    if op is None:
        raise NotFound(f"operation {name!r} not found")
    return _operation_read(op)


@router.get("/workflows", response_model=list[WorkflowRead])
def list_workflows(session: SessionDep, _: Viewer) -> list[WorkflowRead]:
    """Registered workflows, latest version of each."""
    return [WorkflowRead.model_validate(w) for w in service.list_workflows(session)]


@router.get("/workflows/{name}", response_model=WorkflowDetail)
def get_workflow(
    name: str,
    session: SessionDep,
    _: Viewer,
    version: Annotated[int | None, Query(ge=1, le=MAX_OFFSET)] = None,
) -> WorkflowDetail:
    """One workflow (latest version unless `version`)."""
    row = service.get_workflow(session, name=name, version=version)
    if row is None:
        raise WorkflowNotFound(f"workflow {name!r} not found")
    return WorkflowDetail.model_validate(row)


@router.post("/workflows/validate", response_model=ValidationReport)
def validate_workflow(body: WorkflowSubmit, request: Request, _: Viewer) -> ValidationReport:
    """Check a workflow without storing it; every problem with its path and line."""
    try:
        issues = check_workflow(parse_workflow(body.source, structure=False), _library(request))
    except SpecError as exc:
        issues = exc.issues
    return ValidationReport(
        ok=not issues,
        issues=[{"path": i.path, "message": i.message, "line": i.line} for i in issues],
    )


@router.post("/workflows", response_model=WorkflowRead, status_code=status.HTTP_201_CREATED)
def create_workflow(
    body: WorkflowSubmit, request: Request, session: SessionDep, who: Developer
) -> WorkflowRead:
    """Register a new workflow version. 403 `WorkflowNameReserved` for the name of a workflow
    fleetops ships (pre-approved changes run those unreviewed); the refusal is audited."""
    try:
        row = service.register_workflow(
            session, audit_context(request, who), source=body.source, library=_library(request)
        )
    except (WorkflowNameReserved, InvalidChange) as exc:
        session.rollback()
        record_refusal(
            request, who, "reserved" if isinstance(exc, WorkflowNameReserved) else "invalid"
        )
        raise
    return WorkflowRead.model_validate(row)


def _change(session: Session, change_id: int) -> ChangeRequest:
    change = service.get_change(session, change_id)
    if change is None:
        raise ChangeNotFound(f"change {change_id} not found")
    return change


@router.post("/changes", response_model=ChangeRead, status_code=status.HTTP_201_CREATED)
def submit_change(
    body: ChangeCreate, request: Request, session: SessionDep, who: Developer
) -> ChangeRead:
    """Submit a change request; targets are resolved and batches planned now.

    422 when `params` do not fit the workflow's declared parameters or `window_end` is not after
    `window_start`; 409 when the selector matches no host."""
    sub = service.Submission(
        workflow=body.workflow,
        version=body.version,
        title=body.title,
        selector=body.selector,
        params=body.params,
        reason=body.reason,
        window_start=body.window_start,
        window_end=body.window_end,
    )
    try:
        change = service.submit(
            session,
            audit_context(request, who),
            sub,
            library=_library(request),
            policy=_policy(request),
        )
    except InvalidChange:
        # Refused submissions are audited too: a parameter aimed off the host, or at a shell,
        # is an attempt someone should be able to see.
        session.rollback()
        record_refusal(request, who, "invalid")
        raise
    return change_read(session, change)


@router.get("/changes", response_model=ChangePage)
def list_changes(
    session: SessionDep,
    _: Viewer,
    state: Annotated[str | None, Query(max_length=32)] = None,
    requester: Annotated[str | None, Query(max_length=128)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ChangePage:
    """Change requests, newest first."""
    stmt = repository.list_query(state=state or "", requester=requester or "")
    rows, total = paginate(session, stmt, limit=limit, offset=offset)
    return ChangePage(
        items=repository.change_reads(session, rows), total=total, limit=limit, offset=offset
    )


@router.get("/changes/{change_id}", response_model=ChangeDetail)
def get_change(change_id: ChangeId, session: SessionDep, _: Viewer) -> ChangeDetail:
    """A change with its approvals and every host's progress."""
    change = _change(session, change_id)
    return ChangeDetail(
        **change_read(session, change).model_dump(),
        approvals_given=[
            ApprovalRead.model_validate(a) for a in service.approvals(session, change)
        ],
        hosts=[HostRunRead.model_validate(h) for h in service.host_runs(session, change)],
    )


@router.get("/changes/{change_id}/preview", response_model=list[StepPreviewRead])
def get_preview(
    change_id: ChangeId, request: Request, session: SessionDep, _: Viewer
) -> list[StepPreviewRead]:
    """Every step as it will run on the first host of each stage: the command text (or built-in
    action and its parameters) and what goes on stdin, rendered with the change's parameters,
    secret values shown as `***`. What an approver approves."""
    change = _change(session, change_id)
    return [
        StepPreviewRead.model_validate(step)
        for step in service.preview(session, change, _library(request))
    ]


@router.get("/changes/{change_id}/steps", response_model=list[StepRunRead])
def get_steps(
    change_id: ChangeId,
    session: SessionDep,
    _: Viewer,
    host: Annotated[str | None, Query(max_length=253)] = None,
    after: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="only steps with a larger id")
    ] = 0,
    limit: Limit = 500,
) -> list[StepRunRead]:
    """Step runs with their output, oldest first; poll with `after` to follow."""
    _change(session, change_id)
    stmt = (
        select(StepRun, HostRun.hostname)
        .join(HostRun, HostRun.id == StepRun.host_run_id)
        .where(HostRun.change_id == change_id, StepRun.id > after)
        .order_by(StepRun.id)
        .limit(limit)
    )
    if host:
        stmt = stmt.where(HostRun.hostname == host)
    out = []
    for step, hostname in session.execute(stmt).all():
        read = StepRunRead.model_validate(step)
        read.hostname = hostname
        out.append(read)
    return out


def _vote(
    request: Request, session: Session, who: Principal, change_id: int, body: Vote, approve: bool
) -> ChangeRead:
    change = _change(session, change_id)
    try:
        service.vote(
            session,
            audit_context(request, who),
            change,
            role=who.role,
            approve=approve,
            comment=body.comment,
            emergency=body.emergency,
        )
    except ApprovalRefused as exc:
        session.rollback()
        # The refusal itself is audited, in its own transaction.
        with session_scope(request.app.state.write_sessions) as own:
            service.record_refused_vote(
                own, audit_context(request, who), change_id, approve=approve, why=exc.detail
            )
        raise
    return change_read(session, change)


@router.post("/changes/{change_id}/approve", response_model=ChangeRead)
def approve_change(
    change_id: ChangeId, body: Vote, request: Request, session: SessionDep, who: Operator
) -> ChangeRead:
    """Approve (operators; never the requester). `emergency` (admins) approves at once."""
    return _vote(request, session, who, change_id, body, approve=True)


@router.post("/changes/{change_id}/reject", response_model=ChangeRead)
def reject_change(
    change_id: ChangeId, body: Vote, request: Request, session: SessionDep, who: Operator
) -> ChangeRead:
    """Reject (operators; never the requester)."""
    return _vote(request, session, who, change_id, body, approve=False)


CONTROLS = ("pause", "resume", "cancel", "abort", "retry")


def _control_route(action: str) -> Callable[..., ChangeRead]:
    def control_change(
        change_id: ChangeId,
        body: ControlBody,
        request: Request,
        session: SessionDep,
        who: Developer,
    ) -> ChangeRead:
        change = _change(session, change_id)
        own_cancel = action == "cancel" and change.requester == who.username
        if not (who.can(Role.OPERATOR) or own_cancel):
            raise PermissionDenied(f"{action} needs the operator role")
        try:
            service.control(
                session, audit_context(request, who), change, action, reason=body.reason
            )
        except TransitionRefused:
            session.rollback()
            raise
        return change_read(session, change)

    return control_change


# One operation per control (not `/{action}`): an unknown action is then a 405 naming the
# allowed methods, like any path, and each control is documented and linked on its own.
_CONTROL_DOCS = {
    "pause": "Pause a running change after its in-flight hosts (operators).",
    "resume": "Resume a paused change (operators).",
    "cancel": "Cancel a change before or during its run (operators; a requester their own).",
    "abort": "Stop a change now, rolling back when its workflow says so (operators).",
    "retry": "Run a change's failed hosts again (operators).",
}
for _action in CONTROLS:
    router.add_api_route(
        f"/changes/{{change_id}}/{_action}",
        _control_route(_action),
        methods=["POST"],
        response_model=ChangeRead,
        name=f"{_action}_change",
        summary=f"{_action.capitalize()} a change",
        description=_CONTROL_DOCS[_action],
    )


@router.get("/freezes", response_model=list[FreezeRead])
def list_freezes(session: SessionDep, _: Viewer) -> list[FreezeRead]:
    """Freeze windows: no batch starts inside one (except emergency changes)."""
    rows = session.scalars(select(FreezeWindow).order_by(FreezeWindow.starts_at))
    return [FreezeRead.model_validate(r) for r in rows]


@router.post("/freezes", response_model=FreezeRead, status_code=status.HTTP_201_CREATED)
def create_freeze(
    body: FreezeCreate, request: Request, session: SessionDep, who: Operator
) -> FreezeRead:
    """Declare a freeze window."""
    row = service.create_freeze(
        session,
        audit_context(request, who),
        name=body.name,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reason=body.reason,
    )
    return FreezeRead.model_validate(row)


@router.post("/adhoc", response_model=AdhocStarted, status_code=status.HTTP_201_CREATED)
def start_adhoc(
    body: AdhocStart, request: Request, session: SessionDep, who: Operator
) -> AdhocStarted:
    """Record an ad-hoc command about to run (`fleetops exec`); returns the resolved targets."""
    if (body.selector is None) == (body.hosts is None):
        raise InvalidChange("give exactly one of `selector` and `hosts`")
    if body.selector is not None:
        found = list(session.scalars(select_hosts(body.selector).options(*WITH_FACTS)).unique())
        targets = [adhoc.AdhocTarget(h.hostname, h.id) for h in found]
        reads = [
            AdhocTargetRead(
                hostname=t.hostname,
                address=t.address,
                port=t.port,
                user=t.user,
                labels=dict(t.labels),
            )
            for t in map(target_of, found)
        ]
        source = body.selector
    else:
        names = [h.hostname for h in body.hosts or []]
        known = adhoc.resolve_known(session, names)
        targets = [adhoc.AdhocTarget(n, known.get(n)) for n in names]
        reads = []
        source = body.source or "inventory file"
    change = adhoc.start(
        session,
        audit_context(request, who),
        command=body.command,
        targets=targets,
        source=source,
        risk=Risk(body.risk),
    )
    return AdhocStarted(change_id=change.id, targets=reads)


@router.post("/adhoc/{change_id}/results", response_model=ChangeRead)
def finish_adhoc(
    change_id: ChangeId, body: AdhocResults, request: Request, session: SessionDep, who: Operator
) -> ChangeRead:
    """Report every host's result of an ad-hoc command; closes its change."""
    change = _change(session, change_id)
    results = [adhoc.AdhocResult(**r.model_dump()) for r in body.results]
    adhoc.finish(session, audit_context(request, who), change, results)
    return change_read(session, change)
