"""Queries for the logs domain: cursors, raw lines, templates, tokens, retention."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.orm import Session, aliased

from fleetops.models import (
    HostErrorCount,
    HostTaskWindow,
    IngestToken,
    LatencyWindow,
    LinkWindow,
    LogCursor,
    LogJob,
    LogLine,
    LogTemplate,
    RollupState,
    TemplateCount,
    utcnow,
)


def load_cursors(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Stored offsets for (source, file) pairs, read in chunks to keep statements small."""
    keys = list(keys)
    found: dict[tuple[str, str], int] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        rows = session.execute(
            select(LogCursor.source, LogCursor.file, LogCursor.offset).where(
                tuple_(LogCursor.source, LogCursor.file).in_(chunk)
            )
        )
        found.update({(s, f): o for s, f, o in rows})
    return found


def save_cursors(
    session: Session,
    new: dict[tuple[str, str], int],
    known: dict[tuple[str, str], int],
    now: datetime,
) -> None:
    inserts = [
        {"source": s, "file": f, "offset": o, "updated_at": now}
        for (s, f), o in new.items()
        if (s, f) not in known
    ]
    updates = [{"s": s, "f": f, "o": o, "now": now} for (s, f), o in new.items() if (s, f) in known]
    if inserts:
        session.execute(insert(LogCursor), inserts)
    if updates:
        session.connection().execute(
            update(LogCursor.__table__)  # type: ignore[arg-type]
            .where(LogCursor.source == bindparam("s"), LogCursor.file == bindparam("f"))
            .values(offset=bindparam("o"), updated_at=bindparam("now")),
            updates,
        )


_LINE_COLUMNS = (
    "ts", "received_at", "host", "source", "file", "offset",
    "template_id", "message", "labels", "flags", "size",
)  # fmt: skip


def insert_lines(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert raw lines with one driver-level executemany.

    This is the hottest write of ingestion: values are converted here once (UTC datetimes as the
    dialect stores them, labels as JSON text) instead of per row by the ORM's type machinery."""
    if not rows:
        return
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(f'"{c}"' for c in _LINE_COLUMNS)
    sql = f"INSERT INTO log_lines ({columns}) VALUES ({', '.join([mark] * len(_LINE_COLUMNS))})"
    when = _sqlite_time if sqlite else _naive_utc
    dumps = json.dumps
    received = {id(t): when(t) for t in {r["received_at"] for r in rows}}
    # Records of one payload with equal labels share one dict: serialise each dict once.
    texts = {
        id(labels): dumps(labels, separators=(",", ":")) if labels else "{}"
        for labels in {id(r["labels"]): r["labels"] for r in rows}.values()
    }
    params = [
        (
            when(r["ts"]),
            received[id(r["received_at"])],
            r["host"],
            r["source"],
            r["file"],
            r["offset"],
            r["template_id"],
            r["message"],
            texts[id(r["labels"])],
            r["flags"],
            r["size"],
        )
        for r in rows
    ]
    conn.exec_driver_sql(sql, params)


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def _sqlite_time(ts: datetime) -> str:
    # The exact text SQLAlchemy's SQLite DateTime writes, so comparisons and reads agree.
    return _naive_utc(ts).isoformat(" ", "microseconds")


def load_templates(session: Session) -> list[tuple[int, str, int]]:
    """The templates the miner starts from: not those merged into another."""
    rows = session.execute(
        select(LogTemplate.id, LogTemplate.text, LogTemplate.count)
        .where(LogTemplate.alias_of.is_(None))
        .order_by(LogTemplate.id)
    )
    return [(tid, text, count) for tid, text, count in rows]


def load_aliases(session: Session) -> dict[int, int]:
    """Merged template id -> the id it merged into."""
    rows = session.execute(
        select(LogTemplate.id, LogTemplate.alias_of).where(LogTemplate.alias_of.is_not(None))
    )
    return {tid: into for tid, into in rows if into is not None}


def template_family(session: Session, template_id: int) -> list[int]:
    """A template's id and the ids merged into it, directly or through another merge: the
    lines of one template, whichever id they were stored under."""
    aliases = load_aliases(session)
    family, grew = {template_id}, True
    while grew:
        more = {tid for tid, into in aliases.items() if into in family} - family
        family |= more
        grew = bool(more)
    return sorted(family)


def alias_templates(session: Session, aliases: dict[int, int]) -> None:
    """Record merges: each merged template points at the one it merged into, whose count takes
    the merged one's lines (the merged row keeps its own count, as history)."""
    if not aliases:
        return
    merged = aliased(LogTemplate)
    for tid, into in aliases.items():
        moved = (
            select(merged.count).where(merged.id == tid, merged.alias_of.is_(None))
        ).scalar_subquery()
        session.execute(
            update(LogTemplate)
            .where(LogTemplate.id == into)
            .values(count=LogTemplate.count + func.coalesce(moved, 0))
        )
        session.execute(update(LogTemplate).where(LogTemplate.id == tid).values(alias_of=into))


def save_templates(
    session: Session, new: Sequence[dict[str, Any]], touched: Sequence[dict[str, Any]]
) -> None:
    """Insert new templates; add counts, widen text and move last_seen of the others."""
    if new:
        session.connection().execute(insert(LogTemplate.__table__), new)  # type: ignore[arg-type]
    if touched:
        session.connection().execute(
            update(LogTemplate.__table__)  # type: ignore[arg-type]
            .where(LogTemplate.id == bindparam("tid"))
            .values(
                text=bindparam("text"),
                count=LogTemplate.count + bindparam("delta"),
                last_seen=func.max(LogTemplate.last_seen, bindparam("seen"))
                if session.get_bind().dialect.name == "sqlite"
                else func.greatest(LogTemplate.last_seen, bindparam("seen")),
            ),
            touched,
        )


def token_by_hash(session: Session, token_hash: str) -> IngestToken | None:
    return session.scalar(select(IngestToken).where(IngestToken.token_hash == token_hash))


def touch_tokens(session: Session, names: Iterable[str], now: datetime) -> None:
    names = list(names)
    if names:
        session.execute(
            update(IngestToken).where(IngestToken.name.in_(names)).values(last_seen_at=now)
        )


def prune_lines(session: Session, *, before: datetime, max_bytes: int, chunk: int = 20_000) -> int:
    """Delete lines older than `before`, then the oldest until the window fits `max_bytes`.

    Deletes at most `chunk` rows per call so a long backlog is trimmed in short transactions."""
    oldest = session.scalar(select(func.min(LogLine.id)))
    if oldest is None:
        return 0
    cutoff = session.scalar(select(func.min(LogLine.id)).where(LogLine.ts >= before))
    limit = oldest + chunk
    upto = min(cutoff if cutoff is not None else limit, limit)
    deleted = 0
    if upto > oldest:
        deleted += session.execute(delete(LogLine).where(LogLine.id < upto)).rowcount or 0  # type: ignore[attr-defined]
    if deleted < chunk:
        size, count = session.execute(select(func.sum(LogLine.size), func.count())).one()
        if size and size > max_bytes and count:
            excess_rows = int((size - max_bytes) / (size / count)) + 1
            start = session.scalar(select(func.min(LogLine.id))) or 0
            upto = start + min(excess_rows, chunk - deleted)
            deleted += session.execute(delete(LogLine).where(LogLine.id < upto)).rowcount or 0  # type: ignore[attr-defined]
    return deleted


# --- rollups --------------------------------------------------------------------------------------

_ROLLUPS: list[tuple[str, Any, bool]] = [
    # (attribute of Closed, table, keyed by window length too)
    ("latency", LatencyWindow, True),
    ("links", LinkWindow, True),
    ("templates", TemplateCount, False),
    ("errors", HostErrorCount, False),
    ("host_tasks", HostTaskWindow, False),
]


def save_rollups(session: Session, closed: Any, resume_from: datetime) -> None:
    """Write final windows, replacing any earlier copy (a replay after a restart re-emits them),
    upsert the jobs, and move the resume point, all in the caller's transaction."""
    conn = session.connection()
    for attribute, model, by_length in _ROLLUPS:
        rows = getattr(closed, attribute)
        if not rows:
            continue
        table: Any = model.__table__
        keys = {(r["start"], r.get("seconds")) for r in rows}
        for start, seconds in keys:
            stmt = delete(table).where(table.c.start == start)
            if by_length:
                stmt = stmt.where(table.c.seconds == seconds)
            conn.execute(stmt)
        conn.execute(insert(table), rows)
    _save_jobs(session, closed.jobs, closed.job_tasks)
    state = session.get(RollupState, "aggregator")
    if state is None:
        session.add(RollupState(name="aggregator", watermark=resume_from))
    else:
        state.watermark = resume_from


def _save_jobs(
    session: Session, lifecycle: list[dict[str, Any]], tasks: list[dict[str, Any]]
) -> None:
    """Lifecycle fields are replaced (they are idempotent); task counts are added."""
    now = utcnow()
    ids = {j["app_id"] for j in lifecycle} | {t["app_id"] for t in tasks}
    if not ids:
        return
    existing = {j.app_id: j for j in session.scalars(select(LogJob).where(LogJob.app_id.in_(ids)))}
    for row in lifecycle:
        job = existing.get(row["app_id"])
        if job is None:
            job = existing[row["app_id"]] = LogJob(
                app_id=row["app_id"], tasks_finished=0, tasks_failed=0
            )
            session.add(job)
        job.host, job.state = row["host"], row["state"]
        job.started_at = row["started_at"] or job.started_at
        job.finished_at = row["finished_at"]
        job.duration_s = row["duration_s"] if row["duration_s"] is not None else job.duration_s
        job.updated_at = now
    for row in tasks:
        job = existing.get(row["app_id"])
        if job is None:
            job = existing[row["app_id"]] = LogJob(
                app_id=row["app_id"], state="running", tasks_finished=0, tasks_failed=0
            )
            session.add(job)
        job.tasks_finished += row["finished"]
        job.tasks_failed += row["failed"]
        job.updated_at = now
    session.flush()


def jobs_to_restore(session: Session, resume: datetime, horizon: datetime) -> list[LogJob]:
    """Jobs a replay from `resume` may see again: still running, or finished since then."""
    return list(
        session.scalars(
            select(LogJob).where(
                LogJob.updated_at >= horizon,
                (LogJob.state == "running") | (LogJob.finished_at >= resume),
            )
        )
    )


def resume_point(session: Session) -> datetime | None:
    state = session.get(RollupState, "aggregator")
    return state.watermark if state else None


def lines_since(session: Session, since: datetime, *, after_id: int, limit: int) -> list[LogLine]:
    """Lines with event time at or after `since`, in id order, for replay after a restart."""
    return list(
        session.scalars(
            select(LogLine)
            .where(LogLine.ts >= since, LogLine.id > after_id)
            .order_by(LogLine.id)
            .limit(limit)
        )
    )


def prune_rollups(session: Session, *, before: datetime) -> int:
    deleted = 0
    for _attribute, model, _ in _ROLLUPS:
        table: Any = model.__table__
        deleted += session.execute(delete(table).where(table.c.start < before)).rowcount or 0  # type: ignore[attr-defined]
    jobs: Any = LogJob.__table__
    deleted += session.execute(delete(jobs).where(jobs.c.updated_at < before)).rowcount or 0  # type: ignore[attr-defined]
    return deleted
