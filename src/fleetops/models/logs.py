"""Log ingestion: per-agent tokens, dedup cursors, the bounded window of raw lines and the
persistent templates they were mined into."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleetops.models.base import Base, UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid); PostgreSQL needs BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class IngestToken(Base):
    """A shipper's credential: it may only send logs, and its name is the lines' `source`."""

    __tablename__ = "ingest_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The hosts whose lines it may send (a selector); empty: any host. Lines naming another host
    # are refused and counted: a shipper cannot make findings about machines it does not run on.
    hosts: Mapped[str] = mapped_column(String(4096), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LogCursor(Base):
    """The highest line offset stored per (source, file): an agent's resend below it is a duplicate.

    Kept apart from the raw lines so de-duplication outlives their retention window."""

    __tablename__ = "log_cursors"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    file: Mapped[str] = mapped_column(String(512), primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogTemplate(Base):
    """A mined message shape. Its id is stable: it survives restarts and widening of the text."""

    __tablename__ = "log_templates"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    text: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    example: Mapped[str] = mapped_column(Text, default="")
    # Set when the miner merged this template into an older one: its lines keep this id, and
    # lists and counts go to the older one.
    alias_of: Mapped[int | None] = mapped_column(default=None)


class LogLine(Base):
    """One raw line of the bounded recent window, kept for evidence and search."""

    __tablename__ = "log_lines"
    __table_args__ = (
        Index("ix_log_lines_host_ts", "host", "ts"),
        Index("ix_log_lines_template_ts", "template_id", "ts"),
    )

    FLAG_TRUNCATED = 1
    FLAG_INVALID_UTF8 = 2
    FLAG_CLOCK_SKEW = 4  # event time far in the future or past; `ts` is the received time then
    FLAG_NO_TIMESTAMP = 8

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    host: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(128))
    file: Mapped[str | None] = mapped_column(String(512))
    offset: Mapped[int | None] = mapped_column(BigInteger)
    template_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flags: Mapped[int] = mapped_column(SmallInteger, default=0)
    size: Mapped[int] = mapped_column(Integer)  # bytes as received, before any truncation


# --- rollups: what the stream aggregation keeps (the "RDS" of diagnosis) -------------------------


class LogJob(Base):
    """A job (YARN application, Spark app) as seen in its lifecycle lines."""

    __tablename__ = "log_jobs"

    app_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(
        String(16), index=True
    )  # running | finished | failed | killed
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    duration_s: Mapped[float | None] = mapped_column(Float)
    tasks_finished: Mapped[int] = mapped_column(default=0)
    tasks_failed: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LatencyWindow(Base):
    """Job or task duration percentiles of one window (from a mergeable sketch, kept too)."""

    __tablename__ = "latency_windows"

    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    seconds: Mapped[int] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)  # job | task
    count: Mapped[int]
    p50: Mapped[float | None] = mapped_column(Float)
    p95: Mapped[float | None] = mapped_column(Float)
    p99: Mapped[float | None] = mapped_column(Float)
    max: Mapped[float | None] = mapped_column(Float)
    sketch: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LinkWindow(Base):
    """Transfers between two racks in one window: the cells of the link latency matrix."""

    __tablename__ = "link_windows"

    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    seconds: Mapped[int] = mapped_column(primary_key=True)
    src_rack: Mapped[str] = mapped_column(String(64), primary_key=True)
    dst_rack: Mapped[str] = mapped_column(String(64), primary_key=True)
    transfers: Mapped[int]
    bytes: Mapped[int] = mapped_column(BigInteger)
    slow: Mapped[int]  # transfers far below the fleet's usual throughput for their path
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    mbps_p50: Mapped[float | None] = mapped_column(Float)


class HostErrorCount(Base):
    """Error-signature lines per host and minute (disk I/O, EXT4/XFS, MCE/EDAC, NIC, OOM, ...)."""

    __tablename__ = "host_error_counts"

    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    signature: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int]


class TemplateCount(Base):
    """Lines per template and minute, with how many hosts wrote them."""

    __tablename__ = "template_counts"

    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    template_id: Mapped[int] = mapped_column(primary_key=True)
    count: Mapped[int]
    hosts: Mapped[int]


class HostTaskWindow(Base):
    """Task durations per host and minute, and how they compare with the same stages elsewhere."""

    __tablename__ = "host_task_windows"

    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    tasks: Mapped[int]
    failed: Mapped[int]
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    ratio: Mapped[float | None] = mapped_column(Float)  # median of duration / its stage's median


class RollupState(Base):
    """How far aggregation has finalised windows (event time), so a restart resumes exactly."""

    __tablename__ = "log_rollup_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    watermark: Mapped[datetime] = mapped_column(UTCDateTime)
