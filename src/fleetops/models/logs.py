"""Log ingestion: per-agent tokens, dedup cursors, the bounded window of raw lines and the
persistent templates they were mined into."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, SmallInteger, String, Text
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
