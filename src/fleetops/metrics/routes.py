"""The metrics API: systems push samples with an ingest token; anyone logged in reads series."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from fleetops.auth.dependencies import SessionDep, Viewer
from fleetops.db import session_scope
from fleetops.errors import ERROR_RESPONSES, NotFound
from fleetops.logs.dependencies import ingest_source
from fleetops.metrics import service
from fleetops.metrics.schemas import (
    MetricName,
    MetricPointRead,
    MetricPush,
    MetricSeries,
    MetricSummary,
    PushAnswer,
)

router = APIRouter(tags=["metrics"], responses=ERROR_RESPONSES)
SPANS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6)}


async def _pusher(request: Request) -> str:
    """The ingest token's name (a dependency, so that it answers before the body is read)."""
    return (await ingest_source(request, "push metrics")).name


Pusher = Annotated[str, Depends(_pusher)]


@router.post("/metrics", response_model=PushAnswer, status_code=202)
async def push(request: Request, _: Pusher, body: MetricPush) -> PushAnswer:
    """Push samples (a batch of up to 10,000): gauges are averaged and counts turned into rates
    per 10-second window. The batch is stored whole or refused whole (422 names the point)."""
    now = datetime.now(UTC)

    def store() -> int:
        with session_scope(request.app.state.write_sessions) as session:
            return service.record(session, body.points, now=now)

    windows = await asyncio.to_thread(store)
    return PushAnswer(accepted=len(body.points), windows=windows)


@router.get("/metrics", response_model=list[MetricSummary])
def metric_names(session: SessionDep, _: Viewer) -> list[MetricSummary]:
    """Every metric pushed, with its kind and number of series."""
    return [MetricSummary(**row) for row in service.names(session)]


@router.get("/metrics/{name}", response_model=MetricSeries)
def metric_series(
    session: SessionDep,
    _: Viewer,
    name: Annotated[MetricName, Path()],
    last: Annotated[str, Query(alias="range", pattern="^(15m|1h|6h)$")] = "15m",
) -> MetricSeries:
    """The metric per 10-second window over the range, with its normal band for now."""
    now = datetime.now(UTC)
    kind, points = service.values(session, name, now - SPANS[last], now)
    if not kind:
        raise NotFound(f"no metric {name!r} in the last {last}; `GET /api/v1/metrics` lists them")
    return MetricSeries(
        name=name,
        kind=kind,
        seconds=service.WINDOW_SECONDS,
        points=[MetricPointRead(start=s, value=v) for s, v in points],
        band=service.band(session, name, now),
    )
