"""Logs API: ingestion (native/Fluent Bit/Vector JSON, Loki push), search, templates, tokens.

Ingestion endpoints take only ingest tokens (`fleetops logs token create`), as `Authorization:
Bearer <token>` or as the password of Basic auth (what Loki clients send). They answer after the
lines are committed; when the pipeline is full they answer 429 with Retry-After."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from fleetops.audit.refusals import RefusalLog
from fleetops.audit.service import AuditContext
from fleetops.auth.dependencies import (
    Admin,
    SessionDep,
    Viewer,
    audit_context,
)
from fleetops.errors import (
    ERROR_RESPONSES,
    INGEST_RESPONSES,
    BadRequest,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
    UnsupportedMediaType,
)
from fleetops.kit.instants import Instant
from fleetops.kit.pagination import MAX_OFFSET, Limit, Offset
from fleetops.logs import service
from fleetops.logs.dependencies import forget_ingest_tokens, ingest_source, read_body
from fleetops.logs.ingest.http import PayloadError, decompress, parse_json_records, parse_loki_push
from fleetops.logs.ingest.pipeline import IngestPipeline
from fleetops.logs.ingest.records import LogRecord, Overloaded
from fleetops.logs.schemas import (
    IngestAnswer,
    IngestStats,
    IngestTokenCreate,
    IngestTokenCreated,
    IngestTokenRead,
    LineRead,
    TemplatePage,
    TemplateRead,
)
from fleetops.logs.service import IngestSource

router = APIRouter(tags=["logs"], responses=ERROR_RESPONSES)
loki_router = APIRouter(tags=["logs"], responses=INGEST_RESPONSES)

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]
                }
            },
        },
    }
}


@router.post(
    "/logs",
    response_model=IngestAnswer,
    responses=INGEST_RESPONSES,
    openapi_extra=_BODY,
    summary="Send log lines (JSON lines or a JSON array; gzip accepted)",
)
async def ingest(request: Request) -> IngestAnswer:
    source = await ingest_source(request, "send logs")
    data = await _body(request)
    peer = _peer(request)
    records = await asyncio.to_thread(_decode, lambda: parse_json_records(data, peer=peer))
    return await _submit(request, source, records)


@loki_router.post(
    "/loki/api/v1/push",
    status_code=204,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
    summary="Loki push API (JSON form), for Promtail, Alloy, Vector or Fluent Bit Loki outputs",
)
async def loki_push(request: Request) -> Response:
    source = await ingest_source(request, "send logs")
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported: fleetops takes the JSON form of the "
            "Loki push API (Promtail/Alloy: it is protobuf only; use Vector, Fluent Bit "
            "`loki` output with `line_format json`, or `fleetops agent`)"
        )
    data = await _body(request)
    peer = _peer(request)
    records = await asyncio.to_thread(_decode, lambda: parse_loki_push(data, peer=peer))
    await _submit(request, source, records)
    return Response(status_code=204)


@router.get("/logs/search", response_model=list[LineRead])
def search(
    session: SessionDep,
    _: Viewer,
    host: str | None = None,
    source: str | None = None,
    template: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    contains: Annotated[str | None, Query(max_length=500)] = None,
    since: Annotated[
        Instant | None, Query(alias="from", description="before `to` (400 otherwise)")
    ] = None,
    until: Annotated[Instant | None, Query(alias="to")] = None,
    after_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Limit = 100,
) -> list[LineRead]:
    """Recent raw lines, newest first; with `after_id`, the lines stored after it, oldest first."""
    query = service.LineQuery(host, source, template, contains, since, until, after_id)
    return [
        LineRead.model_validate(line) for line in service.search_lines(session, query, limit=limit)
    ]


@router.get("/logs/templates", response_model=TemplatePage)
def templates(
    session: SessionDep,
    _: Viewer,
    contains: Annotated[str | None, Query(max_length=500)] = None,
    since: Instant | None = None,
    order: Annotated[str, Query(pattern="^(count|last_seen|first_seen|id)$")] = "count",
    limit: Limit = 100,
    offset: Offset = 0,
) -> TemplatePage:
    rows, total = service.list_templates(
        session, contains=contains, since=since, order=order, limit=limit, offset=offset
    )
    return TemplatePage(
        items=[TemplateRead.model_validate(t) for t in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/logs/templates/{template_id}", response_model=TemplateRead)
def template(
    session: SessionDep, _: Viewer, template_id: Annotated[int, Path(ge=1, le=MAX_OFFSET)]
) -> TemplateRead:
    return TemplateRead.model_validate(service.get_template(session, template_id))


@router.get("/logs/stats", response_model=IngestStats)
def stats(request: Request, _: Viewer) -> IngestStats:
    pipeline: IngestPipeline | None = getattr(request.app.state, "ingest", None)
    if pipeline is None:
        return IngestStats(
            running=False, pending_lines=0, accepted=0, duplicates=0, rejected_overload=0,
            commits=0, failures=0, by_source={},
        )  # fmt: skip
    s = pipeline.stats
    return IngestStats(
        running=True,
        pending_lines=pipeline.pending,
        accepted=s.accepted,
        duplicates=s.duplicates,
        rejected_overload=s.rejected_overload,
        commits=s.commits,
        failures=s.failures,
        by_source=dict(s.by_source),
    )


@router.get("/logs/tokens", response_model=list[IngestTokenRead])
def list_tokens(session: SessionDep, _: Admin) -> list[IngestTokenRead]:
    return [IngestTokenRead.model_validate(t) for t in service.list_ingest_tokens(session)]


@router.post("/logs/tokens", response_model=IngestTokenCreated, status_code=201)
def create_token(
    request: Request, session: SessionDep, principal: Admin, body: IngestTokenCreate
) -> IngestTokenCreated:
    token, plaintext = service.create_ingest_token(
        session, audit_context(request, principal), name=body.name, hosts=body.hosts or ""
    )
    return IngestTokenCreated(**IngestTokenRead.model_validate(token).model_dump(), token=plaintext)


@router.delete("/logs/tokens/{name}", response_model=IngestTokenRead)
def revoke_token(
    request: Request, session: SessionDep, principal: Admin, name: str
) -> IngestTokenRead:
    token = service.revoke_ingest_token(session, audit_context(request, principal), name=name)
    forget_ingest_tokens(request)
    return IngestTokenRead.model_validate(token)


# --- ingestion helpers -------------------------------------------------------------------------


def _peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _body(request: Request) -> bytes:
    limit: int = request.app.state.settings.ingest_max_body_bytes
    body = await read_body(request, limit, "ingest_max_body_bytes")
    try:
        return decompress(body, request.headers.get("content-encoding"), max_bytes=limit)
    except PayloadError as exc:
        raise _payload_error(exc) from None


def _decode(parse: Any) -> list[LogRecord]:
    try:
        records: list[LogRecord] = parse()
    except PayloadError as exc:
        raise _payload_error(exc) from None
    except RecursionError:
        raise BadRequest("JSON nested too deeply") from None
    return records


def _payload_error(exc: PayloadError) -> Exception:
    kinds = {413: PayloadTooLarge, 415: UnsupportedMediaType}
    return kinds.get(exc.status, BadRequest)(exc.message)


async def _submit(request: Request, source: IngestSource, records: list[LogRecord]) -> IngestAnswer:
    pipeline: IngestPipeline | None = getattr(request.app.state, "ingest", None)
    if pipeline is None:
        raise Unavailable("log ingestion is not running on this server (ingest_enabled = false)")
    refused = 0
    if source.hosts is not None:  # a bound token speaks only for its hosts
        kept = [r for r in records if r.host in source.hosts]
        refused = len(records) - len(kept)
        if refused:
            pipeline.stats.refused_hosts += refused
            others = sorted({r.host for r in records if r.host not in source.hosts})
            await asyncio.to_thread(_record_foreign, request, source, refused, others)
        records = kept
    try:
        result = await pipeline.submit(source.name, records)
    except Overloaded as exc:
        seconds = max(1, round(exc.retry_after))
        raise TooManyRequests(str(exc), headers={"Retry-After": str(seconds)}) from None
    except Exception:
        raise Unavailable("storing the lines failed; nothing was kept, retry the request") from None
    return IngestAnswer(
        accepted=result.accepted,
        duplicates=result.duplicates,
        truncated=result.truncated,
        clock_skew=result.clock_skew,
        refused_hosts=refused,
    )


def _record_foreign(request: Request, source: IngestSource, lines: int, hosts: list[str]) -> None:
    """Audit a request that named hosts outside its token's binding (counted per minute)."""
    refusals: RefusalLog = request.app.state.refusals
    refusals.refuse(
        AuditContext(actor=f"ingest:{source.name}", source=_peer(request)),
        action="logs.ingest",
        entity_type="ingest_token",
        entity_id=source.name,
        outcome="foreign_hosts",
        after={"lines": lines, "hosts": hosts[:20]},
    )
