"""Findings: the one table every detector reports to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetops.models.base import Base, UTCDateTime, utcnow


class Finding(Base):
    """Something a detector believes is wrong with an entity, with the evidence for it.

    `dedup_key` names the problem (e.g. "straggler:host:h0042"); `active_key` holds it while the
    finding is open or acknowledged and is NULL once resolved, so a unique index allows one live
    finding per problem and a later recurrence starts a new one."""

    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_kind_status", "kind", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    detector: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))  # host | link | switch | template | fleet
    entity: Mapped[str] = mapped_column(String(255), index=True)
    severity: Mapped[str] = mapped_column(String(16))  # info | warning | critical
    score: Mapped[float] = mapped_column(Float, default=0.0)
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), index=True)
    dedup_key: Mapped[str] = mapped_column(String(255), index=True)
    active_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # [{"type": "lines" | "window" | "metric" | "finding", ...}] — enough to open the evidence.
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurrences: Mapped[int] = mapped_column(default=1)
    onset_at: Mapped[datetime] = mapped_column(UTCDateTime)  # event time of the first evidence
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
