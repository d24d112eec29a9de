"""Push, store and read named metrics.

Samples are folded into 10-second windows as they arrive (count, sum, min, max per series), so
storage grows with time and series, not with how often a pusher sends: an upsert per window, in
the database, so concurrent pushers and servers add up instead of overwriting each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from fleetops.errors import BadRequest, Conflict
from fleetops.metrics.schemas import MetricPoint
from fleetops.models import MetricWindow

WINDOW_SECONDS = 10
FUTURE_SKEW = timedelta(minutes=5)
PAST_SKEW = timedelta(days=8)  # a band looks a week back
BAND_DAYS = 7
BAND_HALF_SPAN = timedelta(minutes=15)
BAND_MIN_WINDOWS = 20
UPSERT_ROWS = 500  # windows per statement: 5,000 bound values, under every SQLite's limit


class MetricKindConflict(Conflict):
    """A metric pushed as a gauge and as a count: its windows would not add up."""


class PointOutOfRange(BadRequest):
    status_code = 422


@dataclass
class _Window:
    kind: str
    labels: dict[str, str]
    count: int = 0
    sum: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)


def series_key(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def window_start(moment: datetime) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % WINDOW_SECONDS, UTC)


def record(session: Session, points: Sequence[MetricPoint], *, now: datetime) -> int:
    """Fold the points into their windows; the number of windows written. All or nothing: one
    bad point (out of time range, a count below zero, a kind that contradicts the metric's)
    refuses the batch, naming it."""
    windows: dict[tuple[str, str, datetime], _Window] = {}
    for index, point in enumerate(points):
        moment = point.time or now
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if not in_time_range(moment, now):
            raise PointOutOfRange(
                f"points[{index}].time {moment.isoformat()} is more than "
                f"{PAST_SKEW.days} days before or 5 minutes after the server's clock"
            )
        if point.kind == "count" and point.value < 0:
            raise PointOutOfRange(f"points[{index}].value: a count cannot be negative")
        key = (point.name, series_key(point.labels), window_start(moment))
        window = windows.setdefault(key, _Window(point.kind, dict(point.labels)))
        if window.kind != point.kind:
            raise MetricKindConflict(f"points[{index}]: {point.name} is sent as both kinds")
        window.add(point.value)
    _check_kinds(session, {name: w.kind for (name, _, _), w in windows.items()})
    rows = [
        {
            "name": name,
            "series": series,
            "start": start,
            "seconds": WINDOW_SECONDS,
            "kind": w.kind,
            "count": w.count,
            "sum": w.sum,
            "min": w.min,
            "max": w.max,
            "labels": w.labels,
        }
        for (name, series, start), w in windows.items()
    ]
    for first in range(0, len(rows), UPSERT_ROWS):
        _upsert(session, rows[first : first + UPSERT_ROWS])
    return len(rows)


def record_matching(
    session: Session, points: Sequence[MetricPoint], *, now: datetime
) -> tuple[int, int, list[str]]:
    """Record the points whose metric is stored as their kind, or not stored yet; the windows
    written, the points recorded, and the metrics left out for their kind."""
    kinds = {point.name: point.kind for point in points}
    known = known_kinds(session, list(kinds))
    clash = sorted(name for name, kind in kinds.items() if known.get(name, kind) != kind)
    kept = [point for point in points if point.name not in clash] if clash else points
    return (record(session, kept, now=now) if kept else 0), len(kept), clash


def in_time_range(moment: datetime, now: datetime) -> bool:
    """Whether a sample at `moment` may be stored (8 days back, 5 minutes ahead)."""
    return now - PAST_SKEW <= moment <= now + FUTURE_SKEW


def known_kinds(session: Session, names: Sequence[str]) -> dict[str, str]:
    """The kind each of these metrics was stored as; metrics not stored yet are absent."""
    found: dict[str, str] = {}
    for first in range(0, len(names), UPSERT_ROWS):
        rows = session.execute(
            select(MetricWindow.name, func.min(MetricWindow.kind))
            .where(MetricWindow.name.in_(names[first : first + UPSERT_ROWS]))
            .group_by(MetricWindow.name)
        )
        found.update((name, kind) for name, kind in rows)
    return found


def latest_start(session: Session, name: str) -> datetime | None:
    """The start of the metric's latest window, None if it has none."""
    return session.scalar(select(func.max(MetricWindow.start)).where(MetricWindow.name == name))


def _check_kinds(session: Session, kinds: dict[str, str]) -> None:
    known = known_kinds(session, list(kinds))
    for name, kind in kinds.items():
        if known.get(name, kind) != kind:
            raise MetricKindConflict(
                f"{name} is a {known[name]}, not a {kind}: push it as it started, or use "
                "another name"
            )


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the windows, adding to those already there, in one statement."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(MetricWindow).values(rows)
    table = MetricWindow.__table__
    lower, higher = (func.min, func.max) if dialect == "sqlite" else (func.least, func.greatest)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name", "series", "start", "seconds"],
        set_={
            "count": table.c.count + stmt.excluded.count,
            "sum": table.c.sum + stmt.excluded.sum,
            "min": lower(table.c.min, stmt.excluded.min),
            "max": higher(table.c.max, stmt.excluded.max),
        },
    )
    session.execute(stmt)


def names(session: Session) -> list[dict[str, Any]]:
    """Every metric: its kind and how many series it has."""
    rows = session.execute(
        select(
            MetricWindow.name,
            func.min(MetricWindow.kind),
            func.count(MetricWindow.series.distinct()),
        )
        .group_by(MetricWindow.name)
        .order_by(MetricWindow.name)
    ).all()
    return [{"name": n, "kind": k, "series": int(s)} for n, k, s in rows]


def values(
    session: Session, name: str, since: datetime, until: datetime
) -> tuple[str, list[tuple[datetime, float]]]:
    """The metric's kind and its value per window in [since, until), summed over its series."""
    rows = session.execute(
        select(MetricWindow.start, MetricWindow.kind, MetricWindow.count, MetricWindow.sum)
        .where(
            MetricWindow.name == name,
            MetricWindow.seconds == WINDOW_SECONDS,
            MetricWindow.start >= since,
            MetricWindow.start < until,
        )
        .order_by(MetricWindow.start)
    ).all()
    kind = rows[0][1] if rows else ""
    by_start: dict[datetime, float] = {}
    for start, row_kind, count, total in rows:
        value = total / WINDOW_SECONDS if row_kind == "count" else total / max(count, 1)
        by_start[start] = by_start.get(start, 0.0) + value
    return kind, sorted(by_start.items())


def band(session: Session, name: str, now: datetime) -> tuple[float, float] | None:
    """The normal range for this time of day: the 10th and 90th percentiles of the windows in
    the same half hour on each of the previous seven days; None with too little history."""
    seen: list[float] = []
    for day in range(1, BAND_DAYS + 1):
        middle = now - timedelta(days=day)
        seen += [
            v for _, v in values(session, name, middle - BAND_HALF_SPAN, middle + BAND_HALF_SPAN)[1]
        ]
    if len(seen) < BAND_MIN_WINDOWS:
        return None
    seen.sort()
    return seen[len(seen) // 10], seen[(len(seen) * 9) // 10]
