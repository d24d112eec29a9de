"""The device repair loop: isolation and reintegration as changes, tickets driving repair.

Every move that touches a machine is a change run by the change engine: isolation submits the
isolation workflow (a drain) for one host and puts the device in `draining`; reintegration submits
the verification workflow (verify, then undrain) and puts it in `verifying`. The device remembers
its change, and `reconcile` moves it on when the change ends, so the device and its change stay
consistent across crashes: both are written in one transaction, the engine resumes the change after
a restart, and `reconcile` is idempotent.

    suspect --isolate--> draining --change ok--> isolated + ticket --repair starts--> in_repair
    in_repair --ticket repaired--> verifying --change ok--> in_service (probation)
    verifying --change failed--> in_repair, next rung (or proposed for retirement)
    draining --change failed--> suspect (still serving: the drain was rolled back)
    provisioning --admit--> verifying --change ok--> in_service
    verifying (new hardware) --change failed--> in_repair + ticket at `replace` (dead on arrival)

The verification workflow inspects the hardware (probes judged against the model's baseline) as
well as the kernel log, so neither a repaired nor a new machine serves before it measures like
its healthy peers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.changes import repository as change_queries
from fleetops.changes import service as changes
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.enums import ChangeState
from fleetops.changes.operations import OperationLibrary
from fleetops.changes.standard import Pin
from fleetops.devices.enums import Lifecycle, TicketStatus
from fleetops.devices.repairs import service as repairs
from fleetops.devices.repairs.service import RepairConfig, TicketUpdate
from fleetops.devices.states import transition
from fleetops.findings import repository as finding_queries
from fleetops.findings import service as findings
from fleetops.models import (
    ChangeRequest,
    DeviceState,
    DeviceTransition,
    Host,
    RepairTicket,
    Workflow,
    utcnow,
)

L = Lifecycle
LIFECYCLE_ACTOR = "policy:lifecycle"


@dataclass(frozen=True)
class LifecycleConfig:
    """What the loop needs besides the database (from `Settings`, see docs/configuration.md)."""

    library: OperationLibrary
    approvals: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    isolation_workflow: str = "isolate-host"
    verification_workflow: str = "reintegrate-host"
    # Isolation within the safety limits, and the verification of a repaired host, are standard
    # changes approved by configuration; False: each waits for operators like any change.
    preapproved: bool = True
    repair: RepairConfig = field(default_factory=RepairConfig)
    # Parameters for the verification workflow, e.g. which inspection probes it runs; those the
    # workflow does not declare are left out, so a site's own workflow need not take them.
    verification_params: Mapping[str, Any] = field(default_factory=dict)


def _ctx(actor: str = LIFECYCLE_ACTOR) -> AuditContext:
    return AuditContext(actor=actor, source="policy")


def _row(session: Session, host: Host) -> DeviceState:
    row = session.get(DeviceState, host.id)
    assert row is not None, "transition() creates the row"
    return row


def _workflow(
    session: Session, setting: str, library: OperationLibrary
) -> tuple[Workflow, Pin | None]:
    """The workflow a device setting names, and its pin (the shipped ones pin themselves; a
    site's own must be pinned in the setting to run without review)."""
    return changes.pinned_workflow(session, setting, library=library)


def _standard(reason: str, config: LifecycleConfig, pin: Pin | None) -> str:
    """The pre-approval reason, or "" when the change must wait for review."""
    return reason if config.preapproved and pin is not None else ""


# --- isolation -------------------------------------------------------------------------------


def isolate(
    session: Session,
    host: Host,
    *,
    ctx: AuditContext,
    reason: str,
    evidence: Sequence[int],
    config: LifecycleConfig,
    repair: str | None = None,
    now: datetime | None = None,
) -> ChangeRequest:
    """Start draining a suspect (or in-service) host: submit the isolation change and move the
    device to `draining`, in the caller's transaction. `repair` is the rung its repair starts at
    (a failing disk goes straight to replacement); None: the first."""
    at = now or utcnow()
    if host.state == L.IN_SERVICE.value:
        transition(session, host, L.SUSPECT, ctx=ctx, reason=reason, evidence=evidence, now=at)
    step = transition(session, host, L.DRAINING, ctx=ctx, reason=reason, evidence=evidence, now=at)
    workflow, pin = _workflow(session, config.isolation_workflow, config.library)
    change = changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=workflow.name,
            title=f"Isolate {host.hostname}",
            selector=host.hostname,
            params={},
            reason=reason[:2000],
        ),
        library=config.library,
        policy=config.approvals,
        preapproved=_standard(
            f"isolation of one host within the device safety limits (transition {step.id})",
            config,
            pin,
        ),
        pin=pin,
    )
    row = _row(session, host)
    row.change_id, row.repair_action = change.id, repair or ""
    return change


# --- reintegration ---------------------------------------------------------------------------


def reintegrate(
    session: Session,
    host: Host,
    ticket: RepairTicket,
    *,
    ctx: AuditContext,
    config: LifecycleConfig,
    now: datetime | None = None,
) -> ChangeRequest:
    """A repaired device: move it to `verifying` and submit the verification change."""
    at = now or utcnow()
    state = L(_row(session, host).state)
    if state is L.ISOLATED:
        transition(session, host, L.IN_REPAIR, ctx=ctx, reason=f"repair ticket {ticket.id}", now=at)
    transition(
        session,
        host,
        L.VERIFYING,
        ctx=ctx,
        reason=f"repair ticket {ticket.id} ({ticket.action}) reported repaired",
        evidence=ticket.evidence,
        now=at,
    )
    return _verify(
        session,
        host,
        ctx=ctx,
        config=config,
        title=f"Verify and return {host.hostname} (repair ticket {ticket.id})",
        reason=f"repair ticket {ticket.id}: {ticket.action}",
        standard=f"verification of repaired host {host.hostname} (ticket {ticket.id})",
    )


def admit(
    session: Session,
    host: Host,
    *,
    ctx: AuditContext,
    config: LifecycleConfig,
    reason: str,
    now: datetime | None = None,
) -> ChangeRequest:
    """New hardware: move it from `provisioning` to `verifying` and submit its verification.

    It enters service only when the change passes (its probes measure like its model's healthy
    machines); TransitionRefused if it is not provisioning.
    """
    transition(session, host, L.VERIFYING, ctx=ctx, reason=f"admission: {reason}", now=now)
    return _verify(
        session,
        host,
        ctx=ctx,
        config=config,
        title=f"Verify new hardware {host.hostname} before it serves",
        reason=reason,
        standard=f"acceptance inspection of new host {host.hostname}",
    )


def _verify(
    session: Session,
    host: Host,
    *,
    ctx: AuditContext,
    config: LifecycleConfig,
    title: str,
    reason: str,
    standard: str,
) -> ChangeRequest:
    """Submit the verification change for a device now `verifying`, and remember it."""
    workflow, pin = _workflow(session, config.verification_workflow, config.library)
    declared = changes.workflow_spec(workflow).params
    change = changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=workflow.name,
            title=title,
            selector=host.hostname,
            params={k: v for k, v in config.verification_params.items() if k in declared},
            reason=reason,
        ),
        library=config.library,
        policy=config.approvals,
        preapproved=_standard(standard, config, pin),
        pin=pin,
    )
    _row(session, host).change_id = change.id
    return change


def ticket_updated(
    session: Session,
    ctx: AuditContext,
    ticket: RepairTicket,
    change: TicketUpdate,
    *,
    config: LifecycleConfig,
    now: datetime | None = None,
) -> RepairTicket:
    """An update from whoever repairs, and what it means for the device."""
    at = now or utcnow()
    ticket, before = repairs.update(session, ctx, ticket, change, now=at)
    status = TicketStatus(ticket.status)
    if status is before:
        return ticket
    host = session.get(Host, ticket.host_id)
    assert host is not None
    state = L(_row(session, host).state)
    if status is TicketStatus.REPAIRED:
        if state in (L.ISOLATED, L.IN_REPAIR):
            reintegrate(session, host, ticket, ctx=ctx, config=config, now=at)
    elif status is TicketStatus.FAILED:
        repairs.climb(session, ctx, host, ticket, config=config.repair, now=at)
        if state is L.ISOLATED:
            transition(session, host, L.IN_REPAIR, ctx=ctx, reason="repair rung failed", now=at)
    elif state is L.ISOLATED:
        transition(
            session,
            host,
            L.IN_REPAIR,
            ctx=ctx,
            reason=f"repair ticket {ticket.id} is {status}",
            evidence=ticket.evidence,
            now=at,
        )
    return ticket


# --- reconcile -------------------------------------------------------------------------------


@dataclass
class Reconciled:
    isolated: list[str] = field(default_factory=list)
    drain_failed: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    verification_failed: list[str] = field(default_factory=list)


def reconcile(session: Session, config: LifecycleConfig, *, now: datetime) -> Reconciled:
    """Move every device whose change has ended; flush only. Idempotent."""
    done = Reconciled()
    rows = session.execute(
        select(DeviceState, Host)
        .join(Host, Host.id == DeviceState.host_id)
        .where(
            DeviceState.state.in_([L.DRAINING.value, L.VERIFYING.value]),
            DeviceState.change_id.is_not(None),
        )
        .order_by(DeviceState.host_id)
    ).all()
    changes_of = change_queries.by_ids(session, {row.change_id for row, _ in rows if row.change_id})
    for row, host in rows:
        change = changes_of.get(row.change_id or 0)
        if change is None:
            continue
        state = ChangeState(change.state)
        if not state.terminal:
            continue
        ok = state is ChangeState.SUCCEEDED
        if row.state == L.DRAINING.value:
            _drain_ended(session, host, row, change, ok, config, now)
            (done.isolated if ok else done.drain_failed).append(host.hostname)
        else:
            _verification_ended(session, host, row, change, ok, config, now)
            (done.returned if ok else done.verification_failed).append(host.hostname)
    return done


def _evidence(session: Session, host: Host) -> list[int]:
    """The findings behind the device's latest move into suspicion or draining."""
    found = session.scalar(
        select(DeviceTransition.evidence)
        .where(
            DeviceTransition.host_id == host.id,
            DeviceTransition.to_state.in_([L.SUSPECT.value, L.DRAINING.value]),
        )
        .order_by(DeviceTransition.id.desc())
        .limit(1)
    )
    return list(found or [])


def _drain_ended(
    session: Session,
    host: Host,
    row: DeviceState,
    change: ChangeRequest,
    ok: bool,
    config: LifecycleConfig,
    now: datetime,
) -> None:
    ctx = _ctx()
    row.change_id = None
    if not ok:
        transition(
            session,
            host,
            L.SUSPECT,
            ctx=ctx,
            reason=f"isolation change {change.id} ended {change.state}: the host still serves",
            now=now,
        )
        return
    evidence = _evidence(session, host)
    transition(
        session,
        host,
        L.ISOLATED,
        ctx=ctx,
        reason=f"drained by change {change.id}",
        evidence=evidence,
        now=now,
    )
    repairs.open_ticket(
        session,
        ctx,
        host,
        symptoms=change.reason or change.title,
        evidence=evidence,
        config=config.repair,
        action=row.repair_action or None,
        now=now,
    )
    row.probation_until = None


def _resolve_before_repair(
    session: Session,
    ctx: AuditContext,
    host: Host,
    evidence: Sequence[int],
    change: ChangeRequest,
    now: datetime,
) -> None:
    """The findings that sent the device to repair, and its findings last seen before the
    verification started, describe the hardware before the repair: once it passed, they are
    closed, so a new failure is a new finding (escalating on probation)."""
    cutoff = change.started_at or change.created_at
    live = finding_queries.live_about_host(session, host.hostname, seen_by=cutoff, or_ids=evidence)
    for finding_id in live:
        findings.resolve(
            session,
            ctx,
            finding_id=finding_id,
            reason=f"repaired: the device passed verification (change {change.id})",
            now=now,
        )


def _verification_ended(
    session: Session,
    host: Host,
    row: DeviceState,
    change: ChangeRequest,
    ok: bool,
    config: LifecycleConfig,
    now: datetime,
) -> None:
    ctx = _ctx()
    row.change_id = None
    ticket = repairs.live_ticket(session, host)
    if ok:
        _verification_passed(session, ctx, host, row, change, ticket, config, now)
    else:
        _verification_failed(session, ctx, host, change, ticket, config, now)


def _verification_passed(
    session: Session,
    ctx: AuditContext,
    host: Host,
    row: DeviceState,
    change: ChangeRequest,
    ticket: RepairTicket | None,
    config: LifecycleConfig,
    now: datetime,
) -> None:
    """Back in service on probation; the ticket is verified and its findings resolved."""
    transition(
        session,
        host,
        L.IN_SERVICE,
        ctx=ctx,
        reason=f"passed verification (change {change.id}); on probation",
        now=now,
    )
    row.probation_until = now + config.repair.probation
    _resolve_before_repair(session, ctx, host, ticket.evidence if ticket else [], change, now)
    if ticket is not None:
        repairs.close(
            session,
            ctx,
            ticket,
            TicketStatus.VERIFIED,
            reason=f"verification change {change.id} passed",
            now=now,
        )


def _verification_failed(
    session: Session,
    ctx: AuditContext,
    host: Host,
    change: ChangeRequest,
    ticket: RepairTicket | None,
    config: LifecycleConfig,
    now: datetime,
) -> None:
    """Back to repair: the ticket fails and climbs, or new hardware goes back to its vendor."""
    transition(
        session,
        host,
        L.IN_REPAIR,
        ctx=ctx,
        reason=f"failed verification (change {change.id} ended {change.state})",
        now=now,
    )
    if ticket is not None:
        repairs.close(
            session,
            ctx,
            ticket,
            TicketStatus.FAILED,
            reason=f"verification change {change.id} ended {change.state}",
            now=now,
        )
        repairs.climb(session, ctx, host, ticket, config=config.repair, now=now)
    elif _admitted(session, host):
        # new hardware that does not measure like its model goes back to the vendor
        repairs.open_ticket(
            session,
            ctx,
            host,
            symptoms=f"new hardware failed its acceptance verification (change {change.id})",
            evidence=[],
            config=config.repair,
            action="replace",
            now=now,
        )


def _admitted(session: Session, host: Host) -> bool:
    """Whether the device's current verification began as the admission of new hardware."""
    came_from = session.scalar(
        select(DeviceTransition.from_state)
        .where(DeviceTransition.host_id == host.id, DeviceTransition.to_state == L.VERIFYING.value)
        .order_by(DeviceTransition.id.desc())
        .limit(1)
    )
    return came_from == L.PROVISIONING.value
