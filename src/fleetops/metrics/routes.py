"""The metrics API: systems push samples with an ingest token; anyone logged in reads series."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from fleetops.auth.dependencies import SessionDep, Viewer
from fleetops.db import session_scope
from fleetops.errors import (
    ERROR_RESPONSES,
    INGEST_RESPONSES,
    BadRequest,
    NotFound,
    UnsupportedMediaType,
)
from fleetops.logs.dependencies import ingest_source, read_body
from fleetops.metrics import service
from fleetops.metrics.ingest import remote_write, samples, statsd
from fleetops.metrics.schemas import (
    MetricName,
    MetricPointRead,
    MetricPush,
    MetricSeries,
    MetricSummary,
    PushAnswer,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["metrics"], responses=ERROR_RESPONSES)
MAX_BODY = "metrics_max_body_bytes"
SKIP_LOG_SECONDS = 60.0  # at most one warning a minute about skipped remote-write samples
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


def _body_schema(media: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}}}}


@router.post(
    "/metrics/write",
    status_code=204,
    response_class=Response,
    responses=INGEST_RESPONSES,
    openapi_extra=_body_schema("application/x-protobuf", {"type": "string", "format": "binary"}),
)
async def remote_write_push(request: Request, _: Pusher) -> Response:
    """Prometheus remote write 1.0 (`remote_write: [{url: .../api/v1/metrics/write}]`): a
    snappy-compressed protobuf WriteRequest. `__name__` is the metric, the other labels its
    series; counters (`_total`, `_count`, `_sum`, `_bucket`) are stored as their rate. Samples
    that cannot be stored are skipped and counted in `X-Fleetops-Skipped` (with the reasons in
    `X-Fleetops-Skipped-Reasons`); 400 for a body that is not snappy or not a WriteRequest."""
    _remote_write_headers(request)
    settings = request.app.state.settings
    body = await read_body(request, settings.metrics_max_body_bytes, MAX_BODY)
    last = _last_samples(request)
    now = datetime.now(UTC)

    def store() -> samples.Converted:
        series = remote_write.decode(body, max_bytes=settings.metrics_max_decoded_bytes)
        converted = samples.to_points(series, last=last, now=now)
        with session_scope(request.app.state.write_sessions) as session:
            _, converted.stored, clash = service.record_matching(session, converted.points, now=now)
        last.update(converted.latest)
        if clash:
            left = len(converted.points) - converted.stored
            converted.skip("the metric is stored as the other kind", clash[0], left)
        return converted

    converted = await asyncio.to_thread(store)
    _warn_skipped(request, converted)
    return Response(status_code=204, headers=_answer_headers(converted))


def _remote_write_headers(request: Request) -> None:
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding != "snappy":
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding or '(none)'!r}: remote write bodies are snappy"
        )
    media, _, params = request.headers.get("content-type", "").partition(";")
    if media.strip().lower() != "application/x-protobuf":
        raise UnsupportedMediaType(
            f"Content-Type {media.strip() or '(none)'!r}: send application/x-protobuf"
        )
    version = request.headers.get("x-prometheus-remote-write-version", "0.1.0")
    if not version.startswith("0.1") or "io.prometheus.write.v2" in params:
        raise UnsupportedMediaType(
            f"remote write {version} is not supported: fleetops takes 1.0 (0.1.0); set "
            "protobuf_message: prometheus.WriteRequest in the remote_write section"
        )


def _last_samples(request: Request) -> samples.LastSamples:
    """The counters' previous samples, kept by this server process (see ingest/samples.py)."""
    state = request.app.state
    if getattr(state, "remote_write_last", None) is None:
        state.remote_write_last = samples.LastSamples()
    last: samples.LastSamples = state.remote_write_last
    return last


def _answer_headers(converted: samples.Converted) -> dict[str, str]:
    headers = {
        "X-Fleetops-Stored": str(converted.stored),
        "X-Fleetops-Skipped": str(sum(converted.skipped.values())),
    }
    if converted.skipped:
        headers["X-Fleetops-Skipped-Reasons"] = _reasons(converted)
    return headers


def _reasons(converted: samples.Converted) -> str:
    """`reason (e.g. name): n; ...`, in ASCII (a header must be)."""
    text = "; ".join(
        f"{reason} (e.g. {converted.examples.get(reason, '')[:60]}): {count}"
        for reason, count in converted.skipped.most_common()
    )
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _warn_skipped(request: Request, converted: samples.Converted) -> None:
    if not converted.skipped:
        return
    state = request.app.state
    if getattr(state, "remote_write_warned", 0.0) > time.monotonic():
        return
    state.remote_write_warned = time.monotonic() + SKIP_LOG_SECONDS
    log.warning(
        "remote write: samples skipped (at most one such line a minute): %s", _reasons(converted)
    )


@router.post(
    "/metrics/statsd",
    response_model=PushAnswer,
    status_code=202,
    responses=INGEST_RESPONSES,
    openapi_extra=_body_schema("text/plain", {"type": "string"}),
)
async def statsd_push(request: Request, _: Pusher) -> PushAnswer:
    """StatsD lines (`name:value|c`, `|g`, `|ms`; `|@0.1` sample rate; DogStatsD `|#tag:v`
    tags as labels), `Content-Type: text/plain`. All or nothing: one bad line refuses the body
    (422 lists each bad line by number)."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "text/plain":
        raise UnsupportedMediaType(f"Content-Type {media or '(none)'!r}: send text/plain")
    body = await read_body(request, request.app.state.settings.metrics_max_body_bytes, MAX_BODY)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 (byte {exc.start})") from None
    now = datetime.now(UTC)

    def store() -> tuple[int, int]:
        points = statsd.parse(text, now=now)
        with session_scope(request.app.state.write_sessions) as session:
            return len(points), service.record(session, points, now=now)

    accepted, windows = await asyncio.to_thread(store)
    return PushAnswer(accepted=accepted, windows=windows)


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
