"""Hardware signals JSON API: operators (or their agents' tokens) send a tool's output for a host;
its problems become host findings for the health policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from fleetops.audit import service as audit
from fleetops.auth.dependencies import Operator, SessionDep, audit_context
from fleetops.devices import service
from fleetops.devices.enums import Source
from fleetops.devices.exceptions import DeviceNotFound
from fleetops.devices.signals.ingest import parse_payload
from fleetops.devices.signals.schemas import SignalsBody, SignalsResult
from fleetops.devices.signals.service import report_signals
from fleetops.errors import ERROR_RESPONSES
from fleetops.findings.schemas import FindingRead
from fleetops.models import utcnow

router = APIRouter(prefix="/devices", tags=["devices"], responses=ERROR_RESPONSES)
Hostname = Annotated[str, Path(max_length=253)]


@router.post(
    "/{hostname}/signals",
    response_model=SignalsResult,
    responses={201: {"model": SignalsResult, "description": "at least one finding was opened"}},
)
def ingest_signals(
    hostname: Hostname,
    body: SignalsBody,
    request: Request,
    response: Response,
    session: SessionDep,
    who: Operator,
) -> SignalsResult:
    """Read one tool's output for a host (SMART JSON, `ipmitool sel elist`, EDAC counters, a
    node_exporter scrape) and open or bump a `hardware_error` finding per problem found.

    201 when a finding was opened, 200 otherwise (bumped, or nothing wrong); 422 names what in
    the payload cannot be read, and nothing is stored; 404 for an unknown host."""
    if service.get(session, hostname=hostname) is None:
        raise DeviceNotFound(f"host {hostname!r} not found")
    now = utcnow()
    signals = parse_payload(
        Source(body.source), body.payload, host=hostname, now=now, previous=body.previous
    )
    ctx = audit_context(request, who)
    found = report_signals(session, signals, now=now, ctx=ctx)
    opened = [f.id for f in found if f.first_seen == now]  # first seen now: opened by this call
    audit.record(
        session,
        ctx,
        action="device.signals",
        entity_type="host",
        entity_id=hostname,
        after={
            "source": body.source,
            "signals": len(signals),
            "opened": opened,
            "bumped": [f.id for f in found if f.id not in opened],
        },
    )
    response.status_code = status.HTTP_201_CREATED if opened else status.HTTP_200_OK
    return SignalsResult(
        source=body.source,
        signals=len(signals),
        opened=opened,
        findings=[FindingRead.model_validate(f) for f in found],
    )
