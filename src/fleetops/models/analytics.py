"""Results of the analyses of the fleet's own data: storage reports, kept as their analysis
produced them (the figures and findings of one namespace at one moment)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String
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
