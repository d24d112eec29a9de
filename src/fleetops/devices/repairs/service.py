"""Repair tickets and the repair ladder.

A ticket is one repair attempt at one rung of the ladder (reboot → reimage → replace). Whoever does
the repair (a person, a vendor, a ticket system through the status endpoint) moves it through
`open → diagnosing → waiting_parts → repaired`; fleetops alone closes it, `verified` when the
device passed verification and `failed` when it did not (a person may also give up on a rung with
`failed`). A failed rung opens a ticket on the next one; after the last, the device is proposed for
retirement. A device that fails again while on probation starts one rung higher, escalated.

Every ticket change is audited and queues a webhook event in the same transaction (the outbox), so
the ticket system hears of exactly what was committed. Services only flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.devices.enums import TicketStatus
from fleetops.devices.exceptions import TicketNotFound
from fleetops.errors import BadRequest, Conflict
from fleetops.findings import repository as finding_queries
from fleetops.findings import service as findings
from fleetops.findings.enums import Severity
from fleetops.findings.schemas import Observation
from fleetops.kit import statemachine
from fleetops.models import DeviceState, Finding, Host, RepairTicket, WebhookDelivery, utcnow

RUNGS = ("reboot", "reimage", "replace")
DETECTOR = "repairs"
RETIREMENT_KIND = "retirement_proposed"
REPEAT_KIND = "repeat_failure"
SLA_KIND = "repair_sla"


T = TicketStatus
LIVE = (T.OPEN, T.DIAGNOSING, T.WAITING_PARTS, T.REPAIRED)
# What whoever repairs may set; `verified` comes only from a passed verification.
EXTERNAL: dict[TicketStatus, frozenset[TicketStatus]] = {
    T.OPEN: frozenset({T.DIAGNOSING, T.WAITING_PARTS, T.REPAIRED, T.FAILED}),
    T.DIAGNOSING: frozenset({T.WAITING_PARTS, T.REPAIRED, T.FAILED}),
    T.WAITING_PARTS: frozenset({T.DIAGNOSING, T.REPAIRED, T.FAILED}),
    T.REPAIRED: frozenset(),  # verification decides
    T.VERIFIED: frozenset(),
    T.FAILED: frozenset(),
}


@dataclass(frozen=True)
class RepairConfig:
    """Repair settings the services need (from `Settings`, see docs/configuration.md)."""

    sla_hours: dict[str, float] = field(
        default_factory=lambda: {"reboot": 8.0, "reimage": 24.0, "replace": 120.0}
    )
    probation: timedelta = timedelta(days=7)

    def sla(self, action: str) -> timedelta:
        return timedelta(hours=self.sla_hours.get(action, max(self.sla_hours.values(), default=24)))


class InvalidTicketUpdate(BadRequest):
    """A status update that names no known status or field."""


class TicketUpdateRefused(Conflict):
    """The ticket cannot move that way; `rule` names why and `allowed` lists where it can go."""


Move = statemachine.Move[RepairTicket, TicketStatus]
# Whoever repairs moves a live ticket along EXTERNAL; fleetops alone closes it, as verification
# or the ladder saw the repair end.
BY_REPAIRER: statemachine.Machine[RepairTicket, TicketStatus] = statemachine.Machine(
    TicketStatus,
    EXTERNAL,
    [statemachine.AllowedStep(EXTERNAL, lambda t: f"ticket {t.id}")],
    TicketUpdateRefused,
)
CLOSING = {s: frozenset({T.VERIFIED, T.FAILED}) for s in LIVE}
BY_FLEETOPS: statemachine.Machine[RepairTicket, TicketStatus] = statemachine.Machine(
    TicketStatus,
    CLOSING,
    [statemachine.AllowedStep(CLOSING, lambda t: f"ticket {t.id}")],
    TicketUpdateRefused,
)


def next_rung(action: str) -> str | None:
    """The rung after `action`, or None after the last."""
    index = RUNGS.index(action) if action in RUNGS else -1
    return RUNGS[index + 1] if index + 1 < len(RUNGS) else None


def get(session: Session, ticket_id: int, *, lock: bool = False) -> RepairTicket:
    """One ticket; `lock` holds it for this transaction (an update reads, then writes)."""
    ticket = session.get(RepairTicket, ticket_id, with_for_update=lock)
    if ticket is None:
        raise TicketNotFound(f"no repair ticket {ticket_id}")
    return ticket


def live_ticket(session: Session, host: Host) -> RepairTicket | None:
    """The device's ticket still being worked on, if any (there is at most one)."""
    return session.scalar(
        select(RepairTicket)
        .where(RepairTicket.host_id == host.id, RepairTicket.status.in_([s.value for s in LIVE]))
        .order_by(RepairTicket.id.desc())
        .limit(1)
    )


def last_ticket(session: Session, host: Host) -> RepairTicket | None:
    return session.scalar(
        select(RepairTicket)
        .where(RepairTicket.host_id == host.id)
        .order_by(RepairTicket.id.desc())
        .limit(1)
    )


def ticket_json(ticket: RepairTicket, hostname: str) -> dict[str, Any]:
    """The ticket as the API and the webhook show it."""
    return {
        "id": ticket.id,
        "host": hostname,
        "status": ticket.status,
        "action": ticket.action,
        "symptoms": ticket.symptoms,
        "evidence": list(ticket.evidence),
        "vendor": ticket.vendor,
        "rma_number": ticket.rma_number,
        "part": ticket.part,
        "external_ref": ticket.external_ref,
        "notes": ticket.notes,
        "escalated": ticket.escalated,
        "opened_at": ticket.opened_at.isoformat(),
        "sla_due": ticket.sla_due.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
    }


def _emit(session: Session, event: str, ticket: RepairTicket, hostname: str, now: datetime) -> None:
    """Queue the webhook event; it leaves only after this transaction commits."""
    payload = {"event": event, "at": now.isoformat(), "ticket": ticket_json(ticket, hostname)}
    session.add(
        WebhookDelivery(event=event, ticket_id=ticket.id, payload=payload, next_attempt_at=now)
    )


def open_ticket(
    session: Session,
    ctx: AuditContext,
    host: Host,
    *,
    symptoms: str,
    evidence: Sequence[int],
    config: RepairConfig,
    action: str | None = None,
    now: datetime | None = None,
) -> RepairTicket:
    """Open the repair ticket of a device that was just isolated, on the right rung.

    A repair starts at `action` (the policy rule's `repair`) or the first rung; a device that
    fails again while on probation starts one rung above its last repair (or at `action`, if
    higher), escalated, and a `repeat_failure` finding says so."""
    at = now or utcnow()
    if (current := live_ticket(session, host)) is not None:
        return current  # isolation replayed after a crash: the ticket already exists
    previous = last_ticket(session, host)
    start = action if action in RUNGS else RUNGS[0]
    action, escalated = start, False
    state = host_probation(session, host)
    if previous is not None and state is not None and state > at:
        escalated = True
        climbed = next_rung(previous.action) or previous.action
        action = max(start, climbed, key=RUNGS.index)
        _report(
            session,
            REPEAT_KIND,
            host.hostname,
            Severity.WARNING,
            f"{host.hostname} failed again on probation after a {previous.action} "
            f"(ticket {previous.id}): repair escalated to {action}",
            at,
            evidence,
        )
    return _new_ticket(session, ctx, host, action, symptoms, evidence, escalated, config, at)


def _new_ticket(
    session: Session,
    ctx: AuditContext,
    host: Host,
    action: str,
    symptoms: str,
    evidence: Sequence[int],
    escalated: bool,
    config: RepairConfig,
    at: datetime,
    after: int | None = None,
) -> RepairTicket:
    ticket = RepairTicket(
        host_id=host.id,
        status=T.OPEN.value,
        action=action,
        symptoms=symptoms[:4000],
        evidence=list(dict.fromkeys(evidence)),
        escalated=escalated,
        opened_at=at,
        sla_due=at + config.sla(action),
        updated_at=at,
    )
    session.add(ticket)
    session.flush()
    audit.record(
        session,
        ctx,
        action="repair.open",
        entity_type="repair",
        entity_id=ticket.id,
        after={"host": host.hostname, "action": action, "escalated": escalated, "after": after},
    )
    _emit(session, "ticket.opened", ticket, host.hostname, at)
    return ticket


def host_probation(session: Session, host: Host) -> datetime | None:
    return session.scalar(select(DeviceState.probation_until).where(DeviceState.host_id == host.id))


@dataclass(frozen=True)
class TicketUpdate:
    """What whoever repairs may change: the status (optional), a note, and the RMA fields."""

    status: TicketStatus | None = None
    note: str = ""
    vendor: str | None = None
    rma_number: str | None = None
    part: str | None = None
    external_ref: str | None = None


def update(
    session: Session,
    ctx: AuditContext,
    ticket: RepairTicket,
    change: TicketUpdate,
    *,
    now: datetime | None = None,
) -> tuple[RepairTicket, TicketStatus]:
    """Apply an update from whoever repairs; return the ticket and its previous status.

    The caller (the lifecycle) acts on the new status: `repaired` starts verification, `failed`
    climbs the ladder, anything else moves the device into repair."""
    at = now or utcnow()
    before = T(ticket.status)
    fields = {
        k: v
        for k, v in (
            ("vendor", change.vendor),
            ("rma_number", change.rma_number),
            ("part", change.part),
            ("external_ref", change.external_ref),
        )
        if v is not None
    }
    if change.status is None and not fields and not change.note:
        raise InvalidTicketUpdate("nothing to update: give a status, a note or an RMA field")
    if change.status is not None and change.status is not before:
        BY_REPAIRER.check(Move(ticket, before, change.status, ctx.actor))
        ticket.status = change.status.value
        if change.status.closed:
            ticket.closed_at = at
    for key, value in fields.items():
        setattr(ticket, key, value.strip()[:255])
    if change.note:
        stamp = f"[{at:%Y-%m-%d %H:%M} {ctx.actor}] {change.note.strip()}"
        ticket.notes = f"{ticket.notes}\n{stamp}".strip()[-20000:]
    ticket.updated_at = at
    session.flush()
    audit.record(
        session,
        ctx,
        action="repair.update",
        entity_type="repair",
        entity_id=ticket.id,
        before={"status": before.value},
        after={"status": ticket.status, **fields, "note": change.note[:500]},
    )
    _emit(session, "ticket.updated", ticket, hostname_of(session, ticket), at)
    return ticket, before


def close(
    session: Session,
    ctx: AuditContext,
    ticket: RepairTicket,
    status: TicketStatus,
    *,
    reason: str,
    now: datetime | None = None,
) -> RepairTicket:
    """Close a ticket as fleetops saw it end: verified (passed) or failed."""
    at = now or utcnow()
    before = ticket.status
    BY_FLEETOPS.check(Move(ticket, T(before), status, ctx.actor, reason))
    ticket.status, ticket.closed_at, ticket.updated_at = status.value, at, at
    stamp = f"[{at:%Y-%m-%d %H:%M} {ctx.actor}] {reason}"
    ticket.notes = f"{ticket.notes}\n{stamp}".strip()[-20000:]
    session.flush()
    audit.record(
        session,
        ctx,
        action=f"repair.{status.value}",
        entity_type="repair",
        entity_id=ticket.id,
        before={"status": before},
        after={"status": status.value, "reason": reason},
    )
    _emit(session, f"ticket.{status.value}", ticket, hostname_of(session, ticket), at)
    return ticket


def climb(
    session: Session,
    ctx: AuditContext,
    host: Host,
    failed: RepairTicket,
    *,
    config: RepairConfig,
    now: datetime | None = None,
) -> RepairTicket | None:
    """After a failed rung: open the next rung's ticket, or propose retirement (None)."""
    at = now or utcnow()
    action = next_rung(failed.action)
    if action is None:
        _report(
            session,
            RETIREMENT_KIND,
            host.hostname,
            Severity.WARNING,
            f"{host.hostname} failed every rung of the repair ladder (last: ticket {failed.id}, "
            f"{failed.action}): proposed for retirement",
            at,
            failed.evidence,
        )
        return None
    return _new_ticket(
        session,
        ctx,
        host,
        action,
        failed.symptoms,
        failed.evidence,
        failed.escalated,
        config,
        at,
        after=failed.id,
    )


def hostname_of(session: Session, ticket: RepairTicket) -> str:
    """The hostname of the ticket's device."""
    return session.scalar(select(Host.hostname).where(Host.id == ticket.host_id)) or ""


def _report(
    session: Session,
    kind: str,
    hostname: str,
    severity: Severity,
    title: str,
    now: datetime,
    evidence: Sequence[int],
) -> Finding:
    finding, _ = findings.report(
        session,
        Observation(
            kind=kind,
            detector=DETECTOR,
            entity_type="host",
            entity=hostname,
            severity=severity.value,
            score=1.0,
            title=title,
            evidence=[{"type": "finding", "id": i} for i in list(evidence)[:20]],
            details={},
            onset_at=now,
        ),
        now=now,
    )
    return finding


def check_sla(session: Session, *, now: datetime) -> list[Finding]:
    """Raise a `repair_sla` finding for each live ticket past its due time; resolve the ones whose
    ticket closed (or whose due time moved)."""
    overdue = session.execute(
        select(RepairTicket, Host.hostname)
        .join(Host, Host.id == RepairTicket.host_id)
        .where(RepairTicket.status.in_([s.value for s in LIVE]), RepairTicket.sla_due < now)
        .order_by(RepairTicket.id)
    ).all()
    raised: list[Finding] = []
    keys: list[str] = []
    for ticket, hostname in overdue:
        late = now - ticket.sla_due
        finding, _ = findings.report(
            session,
            Observation(
                kind=SLA_KIND,
                detector=DETECTOR,
                entity_type="host",
                entity=hostname,
                severity=Severity.WARNING.value,
                score=late.total_seconds() / 3600,
                title=f"repair ticket {ticket.id} ({ticket.action}) of {hostname} is past its SLA "
                f"by {_hours(late)} (status {ticket.status})",
                evidence=[{"type": "repair", "id": ticket.id}],
                details={"ticket": ticket.id, "sla_due": ticket.sla_due.isoformat()},
                onset_at=ticket.sla_due,
            ),
            now=now,
        )
        raised.append(finding)
        keys.append(finding.dedup_key)
    _resolve_sla(session, keys, now)
    return raised


def _resolve_sla(session: Session, keys: list[str], now: datetime) -> None:
    """Close the SLA findings whose ticket is no longer overdue (the other repair findings stay)."""
    for finding in finding_queries.live_from(session, detector=DETECTOR, kind=SLA_KIND):
        if finding.dedup_key not in keys:
            findings.resolve(
                session,
                findings.detector_context(DETECTOR),
                finding_id=finding.id,
                reason="the ticket closed or is back within its SLA",
                now=now,
            )


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def query(
    session: Session,
    *,
    statuses: Sequence[TicketStatus] | None = None,
    hostname: str | None = None,
    overdue: bool = False,
    now: datetime | None = None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[RepairTicket, str]], int]:
    """Tickets with their hostname, newest first, and how many match."""
    stmt = select(RepairTicket, Host.hostname).join(Host, Host.id == RepairTicket.host_id)
    if statuses:
        stmt = stmt.where(RepairTicket.status.in_([s.value for s in statuses]))
    if hostname is not None:
        stmt = stmt.where(Host.hostname == hostname)
    if overdue:
        stmt = stmt.where(
            RepairTicket.status.in_([s.value for s in LIVE]),
            RepairTicket.sla_due < (now or utcnow()),
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(RepairTicket.id.desc()).limit(limit).offset(offset)).all()
    return [(t, h) for t, h in rows], total


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(RepairTicket.status, func.count()).group_by(RepairTicket.status)
    ).all()
    found: dict[str, int] = dict(rows)
    return {s.value: found.get(s.value, 0) for s in T}
