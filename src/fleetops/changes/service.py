"""Change request use cases: register workflows, submit, vote, cancel, pause, resume, retry, abort.

Submitting resolves the targets and plans every stage's batches up front, so reviewers approve
exactly which hosts will be touched, in which order. Execution is the engine's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.auth.roles import Role
from fleetops.changes import standard
from fleetops.changes.approvals import (
    ApprovalPolicy,
    Risk,
    Vote,
    approvals_count,
    refusal,
)
from fleetops.changes.engine import journal
from fleetops.changes.enums import ChangeState, HostRunState
from fleetops.changes.exceptions import (
    ApprovalRefused,
    InvalidChange,
    WorkflowNameReserved,
    WorkflowNotFound,
    WorkflowNotPinned,
    WorkflowVersionExists,
)
from fleetops.changes.operations import OperationLibrary, SpecError, redact, validate_params
from fleetops.changes.planning import classify_risk, plan_stage, resolve_stages
from fleetops.changes.preview import StepPreview, check_renders, samples
from fleetops.changes.preview import preview as preview_steps
from fleetops.changes.states import TransitionRefused, transition
from fleetops.changes.workflows import WorkflowSpec, check_workflow, parse_workflow
from fleetops.models import (
    Approval,
    ChangeRequest,
    FreezeWindow,
    HostRun,
    Workflow,
)

S = ChangeState


def _invalid(exc: SpecError) -> InvalidChange:
    issues = [{"path": i.path, "message": i.message, "line": i.line} for i in exc.issues]
    return InvalidChange(str(exc), extra={"issues": issues})


# --- workflows --------------------------------------------------------------------------------


def register_workflow(
    session: Session,
    ctx: AuditContext,
    *,
    source: str,
    library: OperationLibrary,
    shipped: bool = False,
) -> Workflow:
    """Store a new workflow version after full validation; its digest goes into the audit log.

    The names of the workflows fleetops ships are reserved: only `shipped=True` (their own files,
    registered by the system) may store them, so no one shadows a standard workflow."""
    try:
        spec = parse_workflow(source, structure=False)
    except SpecError as exc:
        raise _invalid(exc) from None
    if standard.is_reserved(spec.name) and not shipped:
        raise WorkflowNameReserved(
            f"workflow name {spec.name!r} is reserved: fleetops ships it, and pre-approved "
            "changes run it unreviewed. Register yours under another name and pin it in the "
            "settings (NAME@VERSION#sha256:DIGEST) if it should replace the standard one"
        )
    if issues := check_workflow(spec, library):
        raise _invalid(SpecError(issues))
    taken = session.scalar(
        select(Workflow.id).where(Workflow.name == spec.name, Workflow.version == spec.version)
    )
    if taken is not None:
        raise WorkflowVersionExists(
            f"workflow {spec.name} version {spec.version} exists; bump `version` to change it"
        )
    previous = get_workflow(session, name=spec.name)
    row = Workflow(
        name=spec.name,
        version=spec.version,
        description=spec.description,
        source=source,
        digest=standard.digest_of(source),
        created_by=ctx.actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx,
        action="workflow.create",
        entity_type="workflow",
        entity_id=f"{spec.name}@{spec.version}",
        after={
            "digest": row.digest,
            "previous": f"{previous.name}@{previous.version}#{previous.digest}"
            if previous
            else None,
        },
    )
    return row


def previous_version(session: Session, workflow: Workflow) -> Workflow | None:
    """The version of the same workflow registered before this one, for a diff."""
    stmt = select(Workflow).where(
        Workflow.name == workflow.name, Workflow.version < workflow.version
    )
    return session.scalar(stmt.order_by(Workflow.version.desc()).limit(1))


def pinned_workflow(
    session: Session, setting: str, *, library: OperationLibrary
) -> tuple[Workflow, standard.Pin | None]:
    """The workflow a setting names, and its pin (None: not pinned, so not pre-approvable).

    A shipped workflow registers itself (as `system`) from this release's file on first use; a
    stored row with its name and version but another digest is refused."""
    name, pin = standard.parse_setting(setting)
    if pin is None:
        row = get_workflow(session, name=name)
        if row is None:
            raise WorkflowNotFound(f"workflow {name!r} not found")
        return row, None
    row = get_workflow(session, name=pin.name, version=pin.version)
    if row is None and standard.is_reserved(pin.name):
        source = standard.shipped()[pin.name][1]
        ctx = AuditContext("system", source="fleetops")
        row = register_workflow(session, ctx, source=source, library=library, shipped=True)
    if row is None:
        raise WorkflowNotFound(f"pinned workflow {pin} is not registered")
    if row.digest != pin.digest:
        raise WorkflowNotPinned(
            f"workflow {row.name}@{row.version} is {row.digest}, not the pinned {pin.digest}: "
            "refusing to run it without review"
        )
    return row, pin


def register_shipped(session: Session, *, library: OperationLibrary) -> list[Workflow]:
    """Register this release's shipped workflows that are not stored yet (as `system`), so
    lists show them and their pins exist before the first pre-approved change needs one."""
    return [
        pinned_workflow(session, name, library=library)[0]
        for name, (pin, _) in standard.shipped().items()
        if get_workflow(session, name=name, version=pin.version) is None
    ]


def get_workflow(session: Session, *, name: str, version: int | None = None) -> Workflow | None:
    stmt = select(Workflow).where(Workflow.name == name)
    if version is not None:
        stmt = stmt.where(Workflow.version == version)
    return session.scalar(stmt.order_by(Workflow.version.desc()).limit(1))


def list_workflows(session: Session) -> list[Workflow]:
    """The latest version of each workflow."""
    latest = select(Workflow.name, func.max(Workflow.version).label("v")).group_by(Workflow.name)
    sub = latest.subquery()
    return list(
        session.scalars(
            select(Workflow)
            .join(sub, (Workflow.name == sub.c.name) & (Workflow.version == sub.c.v))
            .order_by(Workflow.name)
        )
    )


def preview(
    session: Session, change: ChangeRequest, library: OperationLibrary
) -> list[StepPreview]:
    """What the change will run, on a sample host of each stage, secrets masked."""
    row = workflow_of(session, change)
    if row is None:
        return []
    spec = workflow_spec(row)
    secrets = frozenset(name for name, param in spec.params.items() if param.secret)
    return preview_steps(session, change, spec, library, secrets=secrets)


def workflow_spec(row: Workflow) -> WorkflowSpec:
    return parse_workflow(row.source, source=f"{row.name}@{row.version}")


# --- submit -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    workflow: str
    title: str
    selector: str
    params: Mapping[str, Any]
    reason: str = ""
    version: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    kind: str = "workflow"


def submit(
    session: Session,
    ctx: AuditContext,
    sub: Submission,
    *,
    library: OperationLibrary,
    policy: ApprovalPolicy,
    preapproved: str = "",
    pin: standard.Pin | None = None,
) -> ChangeRequest:
    """Validate, resolve targets, plan batches, classify risk and apply the approval policy.

    `preapproved` (a reason) marks a standard change that configuration approved in advance, such
    as the health policy's one-host isolation within the device safety limits; it is not offered
    to API callers, and it needs `pin`: the workflow must be exactly that (name, version,
    digest)."""
    row = _submitted_workflow(session, sub, library=library, preapproved=preapproved, pin=pin)
    spec = workflow_spec(row)
    values = _validated(spec, sub)
    stages = resolve_stages(session, spec, sub.selector)
    hosts = {h for stage in stages for h in stage}
    risk = classify_risk(session, spec, library=library, hosts=len(hosts))
    change = _draft(
        session,
        ctx,
        sub,
        row=row,
        spec=spec,
        values=values,
        hosts=len(hosts),
        risk=risk,
        approvals=policy.required(risk),
    )
    for index, (stage_spec, stage_hosts) in enumerate(zip(spec.stages, stages, strict=True)):
        if spec.planned(index):
            plan_stage(session, change, index, stage_hosts, stage_spec.strategy)
    try:  # what the approver will see must render, for a real host of each stage
        check_renders(spec, values, library, samples(session, change))
    except SpecError as exc:
        raise _invalid(exc) from None
    audit.record(
        session,
        ctx,
        action="change.submit",
        entity_type="change",
        entity_id=change.id,
        after={
            "workflow": f"{row.name}@{row.version}",
            "selector": sub.selector,
            "hosts": len(hosts),
            "risk": risk.value,
            "params": change.params_redacted,
        },
    )
    _await_approval(session, ctx, change, risk=risk, preapproved=preapproved)
    return change


def _validated(spec: WorkflowSpec, sub: Submission) -> dict[str, Any]:
    """The submission's parameters checked against the workflow's, and its window checked."""
    try:
        values = validate_params(spec.params, sub.params, path="params")
    except SpecError as exc:
        raise _invalid(exc) from None
    if sub.window_start and sub.window_end and sub.window_end <= sub.window_start:
        raise InvalidChange("window_end must be after window_start")
    return values


def _draft(
    session: Session,
    ctx: AuditContext,
    sub: Submission,
    *,
    row: Workflow,
    spec: WorkflowSpec,
    values: dict[str, Any],
    hosts: int,
    risk: Risk,
    approvals: int,
) -> ChangeRequest:
    """Store the change as a draft, its secrets redacted, so its plan can refer to its id."""
    change = ChangeRequest(
        title=sub.title,
        reason=sub.reason,
        workflow_id=row.id,
        params=values,
        params_redacted=redact(spec.params, values),
        selector=sub.selector,
        host_count=hosts,
        risk=risk.value,
        approvals_required=approvals,
        state=S.DRAFT.value,
        requester=ctx.actor,
        kind=sub.kind,
        window_start=sub.window_start,
        window_end=sub.window_end,
    )
    session.add(change)
    session.flush()
    return change


def _submitted_workflow(
    session: Session,
    sub: Submission,
    *,
    library: OperationLibrary,
    preapproved: str,
    pin: standard.Pin | None,
) -> Workflow:
    """The workflow a submission names (registering a reserved one on first use), pin checked."""
    row = get_workflow(session, name=sub.workflow, version=sub.version)
    if row is None and sub.version is None and standard.is_reserved(sub.workflow):
        row, _ = pinned_workflow(session, sub.workflow, library=library)  # first use: register
    if row is None:
        raise WorkflowNotFound(f"workflow {sub.workflow!r} not found")
    if preapproved and (
        pin is None or (row.name, row.version, row.digest) != (pin.name, pin.version, pin.digest)
    ):
        raise WorkflowNotPinned(
            f"a pre-approved change must run a pinned workflow; {row.name}@{row.version} "
            f"({row.digest}) is not {pin or 'pinned'}"
        )
    return row


def _await_approval(
    session: Session, ctx: AuditContext, change: ChangeRequest, *, risk: Risk, preapproved: str
) -> None:
    """Move a submitted change on: approved in advance, by policy, or waiting for approvers."""
    if preapproved:
        change.approvals_required = 0
        transition(
            session,
            change,
            S.APPROVED,
            ctx=AuditContext("policy", ctx.request_id),
            reason=f"standard change: {preapproved}",
        )
    elif change.approvals_required == 0:
        transition(
            session,
            change,
            S.APPROVED,
            ctx=AuditContext("policy", ctx.request_id),
            reason=f"{risk.value} risk: approved by policy",
        )
    else:
        transition(
            session,
            change,
            S.PENDING_APPROVAL,
            ctx=ctx,
            reason=f"{risk.value} risk: needs {change.approvals_required} approval(s)",
        )


# --- votes and controls -----------------------------------------------------------------------


def vote(
    session: Session,
    ctx: AuditContext,
    change: ChangeRequest,
    *,
    role: Role,
    approve: bool,
    comment: str = "",
    emergency: bool = False,
) -> ChangeRequest:
    """Approve or reject; raises ApprovalRefused naming the rule (the edge audits the refusal)."""
    ballot = Vote(change, ctx.actor, role, emergency, comment)
    if why := refusal(session, ballot):
        raise ApprovalRefused(why)
    decision = "approve" if approve else "reject"
    session.add(
        Approval(
            change_id=change.id,
            approver=ctx.actor,
            decision=decision,
            emergency=emergency,
            comment=comment,
        )
    )
    session.flush()
    audit.record(
        session,
        ctx,
        action=f"change.{decision}",
        entity_type="change",
        entity_id=change.id,
        after={"comment": comment, "emergency": emergency},
        outcome="emergency" if emergency else "ok",
    )
    if not approve:
        transition(
            session, change, S.REJECTED, ctx=ctx, reason=f"rejected by {ctx.actor}: {comment}"
        )
    elif emergency:
        change.emergency = True
        transition(session, change, S.APPROVED, ctx=ctx, reason=f"EMERGENCY approval: {comment}")
    elif approvals_count(session, change) >= change.approvals_required:
        transition(
            session,
            change,
            S.APPROVED,
            ctx=ctx,
            reason=f"approved by {approvals_count(session, change)} operator(s)",
        )
    return change


def record_refused_vote(
    session: Session, ctx: AuditContext, change_id: int, *, approve: bool, why: str
) -> None:
    """Audit a vote a rule refused (four-eyes violations must leave a trace)."""
    audit.record(
        session,
        ctx,
        action="change.approve" if approve else "change.reject",
        entity_type="change",
        entity_id=change_id,
        outcome="refused",
        after={"reason": why},
    )


def create_freeze(
    session: Session,
    ctx: AuditContext,
    *,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
) -> FreezeWindow:
    """Declare a window in which no batch starts (emergency changes excepted)."""
    if ends_at <= starts_at:
        raise InvalidChange("ends_at must be after starts_at")
    row = FreezeWindow(
        name=name, starts_at=starts_at, ends_at=ends_at, reason=reason, created_by=ctx.actor
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx,
        action="freeze.create",
        entity_type="freeze",
        entity_id=row.id,
        after={"name": name, "starts_at": starts_at, "ends_at": ends_at, "reason": reason},
    )
    return row


def control(
    session: Session, ctx: AuditContext, change: ChangeRequest, action: str, *, reason: str = ""
) -> ChangeRequest:
    """pause | resume | cancel | abort | retry, each a state transition with its side effects."""
    state = ChangeState(change.state)
    if action == "pause":
        transition(session, change, S.PAUSED, ctx=ctx, reason=reason or f"paused by {ctx.actor}")
    elif action == "resume":
        if change.gate.startswith("pending:"):
            change.gate = "open:" + change.gate.removeprefix("pending:")
        change.failures_acknowledged = _failed_in_stage(session, change)
        transition(session, change, S.RUNNING, ctx=ctx, reason=reason or f"resumed by {ctx.actor}")
    elif action == "cancel":
        transition(
            session, change, S.CANCELLED, ctx=ctx, reason=reason or f"cancelled by {ctx.actor}"
        )
    elif action == "abort":
        # Roll back only work that was started, and only when the workflow asks for it
        # (`on_abort: stop` leaves hosts as they are, e.g. drained for a person to look at).
        started = state in (S.RUNNING, S.PAUSED)
        target = S.ABORTING if started and _rolls_back(session, change) else S.ABORTED
        transition(session, change, target, ctx=ctx, reason=reason or f"aborted by {ctx.actor}")
    elif action == "retry":
        _retry(session, ctx, change)
    else:
        raise TransitionRefused(f"unknown action {action!r}")
    return change


def _failed_in_stage(session: Session, change: ChangeRequest) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(HostRun)
            .where(
                HostRun.change_id == change.id,
                HostRun.stage_index == change.stage_index,
                HostRun.state == HostRunState.FAILED,
            )
        )
        or 0
    )


def _rolls_back(session: Session, change: ChangeRequest) -> bool:
    row = workflow_of(session, change)
    if row is None:
        return False
    stages = workflow_spec(row).stages
    stage = stages[min(change.stage_index, len(stages) - 1)]
    return stage.strategy.on_abort == "rollback"


def _retry(session: Session, ctx: AuditContext, change: ChangeRequest) -> None:
    failed = session.scalars(
        select(HostRun).where(HostRun.change_id == change.id, HostRun.state == HostRunState.FAILED)
    ).all()
    if not failed:
        raise TransitionRefused(f"change {change.id} has no failed host to retry")
    if change.state == S.RUNNING:
        raise TransitionRefused("pause the change first, or let it finish")
    journal.requeue_failed(session, change.id)
    change.stage_index = min(h.stage_index for h in failed)
    change.failures_acknowledged = 0
    transition(
        session,
        change,
        S.RUNNING,
        ctx=ctx,
        reason=f"retrying {len(failed)} failed host(s) by {ctx.actor}",
    )


# --- queries ----------------------------------------------------------------------------------


def get_change(session: Session, change_id: int) -> ChangeRequest | None:
    return session.get(ChangeRequest, change_id)


def host_runs(session: Session, change: ChangeRequest) -> list[HostRun]:
    return list(
        session.scalars(
            select(HostRun)
            .where(HostRun.change_id == change.id)
            .order_by(HostRun.stage_index, HostRun.batch_index, HostRun.hostname)
        )
    )


def approvals(session: Session, change: ChangeRequest) -> list[Approval]:
    return list(
        session.scalars(
            select(Approval).where(Approval.change_id == change.id).order_by(Approval.id)
        )
    )


def workflow_of(session: Session, change: ChangeRequest) -> Workflow | None:
    """The workflow a change runs (None for an ad-hoc command)."""
    return session.get(Workflow, change.workflow_id) if change.workflow_id else None
