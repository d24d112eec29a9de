"""Change management: stored workflows, change requests, approvals, per-host runs and step runs,
host leases (mutual exclusion and out-of-service budget) and freeze windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleetops.models.base import Base, UTCDateTime, utcnow


class Workflow(Base):
    """A registered workflow version; changes pin the version they were submitted with."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    description: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(Text)  # the YAML as submitted
    # "sha256:<hex>" of `source`: what a pin names, so a pre-approved change runs exactly it.
    digest: Mapped[str] = mapped_column(String(71), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChangeRequest(Base):
    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    # None for ad-hoc commands (`fleetops exec`), which run no workflow.
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id", ondelete="RESTRICT"))
    # Full parameter values, secrets included: never returned by the API (see `params_redacted`).
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    params_redacted: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    selector: Mapped[str] = mapped_column(String(4096))
    host_count: Mapped[int] = mapped_column(default=0)
    risk: Mapped[str] = mapped_column(String(16))
    approvals_required: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(24), index=True)
    # Why the change is where it is: "waiting: out-of-service budget on rack r07 (4/10)".
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    requester: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="workflow")  # workflow | adhoc
    emergency: Mapped[bool] = mapped_column(default=False)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage_index: Mapped[int] = mapped_column(default=0)
    # "pending:S:B" while paused at the manual gate before stage S batch B; "open:S:B" once resumed.
    gate: Mapped[str] = mapped_column(String(32), default="")
    # Failed hosts an operator has already seen (resumed past); the threshold counts new ones.
    failures_acknowledged: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Approval(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("change_id", "approver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(
        ForeignKey("change_requests.id", ondelete="CASCADE"), index=True
    )
    approver: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject
    emergency: Mapped[bool] = mapped_column(default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HostRun(Base):
    """One host in one stage of a change: its batch and how far its steps got."""

    __tablename__ = "host_runs"
    __table_args__ = (
        UniqueConstraint("change_id", "stage_index", "host_id"),
        Index("ix_host_runs_change_stage_batch", "change_id", "stage_index", "batch_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    stage_index: Mapped[int]
    batch_index: Mapped[int]
    # None for an ad-hoc target taken from an inventory file rather than the inventory.
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"))
    hostname: Mapped[str] = mapped_column(String(253))
    # pending | running | succeeded | failed | rolled_back | rollback_failed | cancelled
    state: Mapped[str] = mapped_column(String(20), default="pending")
    step_index: Mapped[int] = mapped_column(default=0)  # next step to run
    error: Mapped[str] = mapped_column(String(2000), default="")
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StepRun(Base):
    """One phase of one step on one host; written before acting (running) and after."""

    __tablename__ = "step_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    host_run_id: Mapped[int] = mapped_column(
        ForeignKey("host_runs.id", ondelete="CASCADE"), index=True
    )
    step_index: Mapped[int]
    operation: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(16))  # run | check | verify | rollback
    attempt: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(16), index=True)  # running | succeeded | failed
    exit_code: Mapped[int | None]
    stdout: Mapped[str] = mapped_column(Text, default="")
    stderr: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(String(2000), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HostLease(Base):
    """A host held by a running change: mutual exclusion; the out-of-service budget counts them."""

    __tablename__ = "host_leases"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    change_id: Mapped[int] = mapped_column(
        ForeignKey("change_requests.id", ondelete="CASCADE"), index=True
    )
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FreezeWindow(Base):
    """No change starts a batch inside a freeze, except emergency changes."""

    __tablename__ = "freeze_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
