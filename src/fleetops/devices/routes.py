"""Devices JSON API: lifecycle states with counts, one device with its recent history, the full
history, and transitions (operators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic.json_schema import SkipJsonSchema

from fleetops.auth.dependencies import Operator, SessionDep, Viewer, audit_context
from fleetops.devices import service
from fleetops.devices.config import lifecycle_config
from fleetops.devices.enums import Lifecycle
from fleetops.devices.exceptions import DeviceNotFound
from fleetops.devices.lifecycle.service import admit
from fleetops.devices.schemas import (
    AdmitBody,
    AdmitRead,
    DeviceDetail,
    DevicePage,
    DeviceRead,
    TransitionBody,
    TransitionPage,
    TransitionRead,
)
from fleetops.errors import ERROR_RESPONSES
from fleetops.inventory import selectors
from fleetops.kit.pagination import Limit, Offset

router = APIRouter(prefix="/devices", tags=["devices"], responses=ERROR_RESPONSES)
Hostname = Annotated[str, Path(max_length=253)]
RECENT = 10

SelectorQuery = Annotated[str | SkipJsonSchema[None], Query(**selectors.SELECTOR_FIELD)]


@router.get("", response_model=DevicePage)
def list_devices(
    session: SessionDep,
    _: Viewer,
    state: Lifecycle | None = None,
    selector: SelectorQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DevicePage:
    """Devices by hostname, optionally in one state, with the count per state of the selection."""
    rows, total = service.query(session, state=state, selector=selector, limit=limit, offset=offset)
    return DevicePage(
        items=[DeviceRead.model_validate(d) for d in rows],
        total=total,
        limit=limit,
        offset=offset,
        counts=service.counts(session, selector=selector),
    )


def _detail(session: SessionDep, hostname: str) -> DeviceDetail:
    device = service.get(session, hostname=hostname)
    if device is None:
        raise DeviceNotFound(f"host {hostname!r} not found")
    recent, _ = service.history(session, hostname=hostname, limit=RECENT, offset=0)
    return DeviceDetail(
        **DeviceRead.model_validate(device).model_dump(),
        next_states=device.next_states,
        recent=[TransitionRead.model_validate(t) for t in recent],
    )


@router.get("/{hostname}", response_model=DeviceDetail)
def get_device(hostname: Hostname, session: SessionDep, _: Viewer) -> DeviceDetail:
    """One device: its state, where it may go next, and its latest transitions."""
    return _detail(session, hostname)


@router.get("/{hostname}/history", response_model=TransitionPage)
def device_history(
    hostname: Hostname, session: SessionDep, _: Viewer, limit: Limit = 100, offset: Offset = 0
) -> TransitionPage:
    """Every transition of a device, newest first."""
    rows, total = service.history(session, hostname=hostname, limit=limit, offset=offset)
    return TransitionPage(
        items=[TransitionRead.model_validate(t) for t in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post("/{hostname}/transition", response_model=TransitionRead)
def transition_device(
    hostname: Hostname, body: TransitionBody, request: Request, session: SessionDep, who: Operator
) -> TransitionRead:
    """Move a device (operators). 409 names the refusing rule and the allowed next states."""
    step = service.move(
        session,
        audit_context(request, who),
        hostname=hostname,
        to=body.to,
        reason=body.reason,
        evidence=body.evidence,
        override=body.override,
    )
    return TransitionRead.model_validate(step)


@router.post("/{hostname}/admit", response_model=AdmitRead, status_code=201)
def admit_device(
    hostname: Hostname, body: AdmitBody, request: Request, session: SessionDep, who: Operator
) -> AdmitRead:
    """Start the verification of new hardware (operators): it serves only once that passes.

    409 if the device is not `provisioning`.
    """
    host = service.host(session, hostname)
    config = lifecycle_config(request.app.state.settings, request.app.state.library)
    change = admit(
        session, host, ctx=audit_context(request, who), config=config, reason=body.reason
    )
    return AdmitRead(hostname=hostname, state=Lifecycle.VERIFYING.value, change_id=change.id)
