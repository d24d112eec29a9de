"""Devices: the lifecycle state of each host, the history of its transitions, repair tickets and
the outbox of ticket webhooks.

A host without a `device_states` row is in service (hosts imported before devices existed); the
row is created on its first transition. History rows are append-only, and no foreign key deletes
them with their host: a host with a lifecycle is retired, never deleted. A webhook delivery row is
written in the transaction that changed the ticket, so it is sent only once that has committed
(the transactional outbox), and retried until the receiver takes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetops.models.base import Base, UTCDateTime, utcnow


class DeviceState(Base):
    """Where a host stands in its lifecycle now; written only by `devices.states.transition`."""

    __tablename__ = "device_states"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="RESTRICT"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(32), index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(128), default="")
    # The change moving the host now (drain while draining, verify + undrain while verifying).
    change_id: Mapped[int | None] = mapped_column(
        ForeignKey("change_requests.id", ondelete="SET NULL"), default=None
    )
    # The rung the pending isolation's repair starts at (the policy rule's `repair`); "" = first.
    repair_action: Mapped[str] = mapped_column(String(32), default="")
    # Back in service after a repair: a failure before this climbs the repair ladder.
    probation_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class DeviceTransition(Base):
    """One move of a host between lifecycle states: who, why, on what evidence."""

    __tablename__ = "device_transitions"
    __table_args__ = (Index("ix_device_transitions_host_at", "host_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))  # a username, or `policy:<name>`
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[int]] = mapped_column(JSON, default=list)  # finding ids
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RepairTicket(Base):
    """One repair attempt on one device, at one rung of the repair ladder."""

    __tablename__ = "repair_tickets"
    __table_args__ = (Index("ix_repair_tickets_host_opened", "host_id", "opened_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(32))  # the rung: reboot | reimage | replace
    symptoms: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[list[int]] = mapped_column(JSON, default=list)  # finding ids
    # Vendor RMA fields, filled by whoever handles the repair.
    vendor: Mapped[str] = mapped_column(String(128), default="")
    rma_number: Mapped[str] = mapped_column(String(128), default="")
    part: Mapped[str] = mapped_column(String(255), default="")
    external_ref: Mapped[str] = mapped_column(String(255), default="")  # e.g. a Jira key
    notes: Mapped[str] = mapped_column(Text, default="")
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)  # failed again on probation
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sla_due: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WebhookDelivery(Base):
    """A ticket event waiting to be (or already) POSTed to the configured ticket system."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_tickets.id", ondelete="CASCADE"), default=None
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")


class RemediationMode(Base):
    """A remediation rule's mode as an admin last set it; a rule without a row runs in the mode
    its file gives (the shipped rules: dry run)."""

    __tablename__ = "remediation_modes"

    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))  # enabled | dry_run | disabled
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RemediationAction(Base):
    """What one remediation rule did, or in dry run would have done, about one finding.

    One row per (rule, finding, mode): a finding seen again is not acted on twice, and a dry-run
    proposal stays next to what the rule did once enabled. `plan` is the change as it would be
    (or was) submitted; `outcome` follows the change and then the finding: pending until the
    change ends, `failed` if it did not succeed, then `fixed` or `not_fixed` by whether the
    finding was seen again within the rule's verification window."""

    __tablename__ = "remediation_actions"
    __table_args__ = (
        Index(
            "ux_remediation_actions_rule_finding_mode", "rule", "finding_id", "mode", unique=True
        ),
        Index("ix_remediation_actions_outcome", "outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(16))  # enabled | dry_run
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finding_id: Mapped[int | None] = mapped_column(
        ForeignKey("findings.id", ondelete="SET NULL"), nullable=True
    )
    entity: Mapped[str] = mapped_column(String(255))  # the host acted on
    action: Mapped[str] = mapped_column(String(32))  # drain | restart_service
    status: Mapped[str] = mapped_column(String(16))  # proposed | submitted | held | refused
    reason: Mapped[str] = mapped_column(Text)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    change_id: Mapped[int | None] = mapped_column(
        ForeignKey("change_requests.id", ondelete="SET NULL"), nullable=True
    )
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
