"""Results of the analyses of the fleet's own data: storage reports, kept as their analysis
produced them (the figures and findings of one namespace at one moment), and resource
reports with the right-sized requests they recommend and what was decided on each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fleetops.models.base import Base, UTCDateTime, utcnow


class StorageReport(Base):
    """One analysed namespace (an fsimage, a listing, a scan); `report` is the whole analysis,
    the columns the figures lists sort and filter by."""

    __tablename__ = "storage_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(255))
    files: Mapped[int] = mapped_column(BigInteger)
    directories: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    raw_bytes: Mapped[int] = mapped_column(BigInteger)
    disk_savings: Mapped[int] = mapped_column(BigInteger)  # the disk findings' sum
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class ResourceReport(Base):
    """One right-sizing analysis of a workload trace: which method recommended, per which
    grouping; `figures` holds the totals and each group's bounded per-bucket series."""

    __tablename__ = "resource_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(16))  # task | profile | job
    method: Mapped[str] = mapped_column(String(16))  # vpa | krr | fleetops
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)


class ResourceRecommendation(Base):
    """One workload group's right-sized request of one resource, and what was decided on it.

    `status` moves only through `analytics.resources.states`; `change_id` is the change that
    applies it once it is applied."""

    __tablename__ = "resource_recommendations"
    __table_args__ = (Index("ix_resource_recommendations_report_status", "report_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(
        ForeignKey("resource_reports.id", ondelete="CASCADE"), index=True
    )
    group: Mapped[str] = mapped_column("grp", String(255))
    target: Mapped[str] = mapped_column(String(255))  # what the scheduler calls the group
    resource: Mapped[str] = mapped_column(String(8))  # cpu | mem
    request: Mapped[float] = mapped_column(Float)
    recommendation: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))  # cores | normalised
    saving: Mapped[float] = mapped_column(Float)  # (request - recommendation) x duration
    risk: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    change_id: Mapped[int | None] = mapped_column(
        ForeignKey("change_requests.id", ondelete="SET NULL"), default=None
    )
