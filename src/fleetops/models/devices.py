"""Devices: the lifecycle state of each host and the history of its transitions.

A host without a `device_states` row is in service (hosts imported before devices existed); the
row is created on its first transition. History rows are append-only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetops.models.base import Base, UTCDateTime, utcnow


class DeviceState(Base):
    """Where a host stands in its lifecycle now; written only by `devices.states.transition`."""

    __tablename__ = "device_states"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(32), index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class DeviceTransition(Base):
    """One move of a host between lifecycle states: who, why, on what evidence."""

    __tablename__ = "device_transitions"
    __table_args__ = (Index("ix_device_transitions_host_at", "host_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))  # a username, or `policy:<name>`
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[int]] = mapped_column(JSON, default=list)  # finding ids
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
