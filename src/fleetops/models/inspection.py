"""Inspection: every hardware probe result, and the per-model baselines judged against.

A result row is written once per probe run (with its verdict, which never changes afterwards: a
later baseline judges later results). Baselines are versioned: a rebuild adds a row and
deactivates the previous one, so the band a machine was judged on stays readable next to the
result that names it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetops.models.base import Base, UTCDateTime, utcnow


class ProbeRun(Base):
    """One probe on one host: the curve it measured, the load it ran under, and the verdict."""

    __tablename__ = "probe_runs"
    __table_args__ = (
        Index("ix_probe_runs_host_probe_at", "host_id", "probe", "at"),
        Index("ix_probe_runs_model_probe_at", "model", "probe", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # RESTRICT: a measured host is history, retired rather than deleted.
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="RESTRICT"))
    hostname: Mapped[str] = mapped_column(String(253))
    model: Mapped[str] = mapped_column(String(64), default="")  # hardware model name at the time
    probe: Mapped[str] = mapped_column(String(32))  # cpu, memory, disk, smart, network
    tool_version: Mapped[str] = mapped_column(String(64), default="")
    points: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    units: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    load: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # LoadSample fields
    # pass | fail | inconclusive | error (the probe did not run or its output was unreadable)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    ratios: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    baseline_id: Mapped[int | None] = mapped_column(
        ForeignKey("baselines.id", ondelete="SET NULL"), default=None
    )
    # The host's lifecycle state when measured: only in-service hosts feed a baseline.
    host_state: Mapped[str] = mapped_column(String(32), default="")
    change_id: Mapped[int | None] = mapped_column(
        ForeignKey("change_requests.id", ondelete="SET NULL"), default=None
    )
    duration_s: Mapped[float] = mapped_column(default=0.0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BaselineRow(Base):
    """The healthy band of every curve point of one probe on one hardware model, one version."""

    __tablename__ = "baselines"
    __table_args__ = (Index("ix_baselines_model_probe_version", "model", "probe", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    probe: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    samples: Mapped[int] = mapped_column(Integer)
    # {point: {"median", "mad", "low", "high", "unit"}}
    bands: Mapped[dict[str, dict[str, Any]]] = mapped_column(JSON, default=dict)
    source_runs: Mapped[list[int]] = mapped_column(JSON, default=list)  # probe_runs ids
    built_by: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
