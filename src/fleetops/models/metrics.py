"""Named metrics pushed by the sites' own systems (transactions, jobs finished per second), kept
as 10-second windows beside the log-derived rollups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from fleetops.models.base import Base, UTCDateTime


class MetricWindow(Base):
    """One series of one metric over one window: what was pushed into it, summed up.

    A gauge's value is the mean of its samples (`sum / count`); a count's is its rate
    (`sum / seconds`)."""

    __tablename__ = "metric_windows"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    series: Mapped[str] = mapped_column(String(1024), primary_key=True)  # "k=v,k=v", sorted
    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    seconds: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # gauge | count
    count: Mapped[int]
    sum: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
