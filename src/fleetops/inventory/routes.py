"""Inventory API: hosts, racks, the reference entities, import and export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import select

from fleetops.auth.dependencies import Operator, SessionDep, Viewer, audit_context
from fleetops.errors import ERROR_RESPONSES
from fleetops.inventory import apply, formats, selectors, service
from fleetops.inventory.document import ImportFailed
from fleetops.inventory.exceptions import HostNotFound, InventoryImportFailed, RackNotFound
from fleetops.inventory.schemas import (
    HostCreate,
    HostPage,
    HostRead,
    HostUpdate,
    ImportRequest,
    ImportSummary,
    LinkRead,
    NamedRead,
    RackCreate,
    RackRead,
    RackUpdate,
)
from fleetops.kit.pagination import Limit, Offset, paginate
from fleetops.models import Cluster, Datacenter, HardwareModel, Host, Link, Region, Switch

SORT_PATTERN = f"^-?({'|'.join(service.HOST_SORTS)})$"
router = APIRouter(tags=["inventory"], responses=ERROR_RESPONSES)

SelectorQuery = Annotated[str | SkipJsonSchema[None], Query(**selectors.SELECTOR_FIELD)]


@router.get("/hosts", response_model=HostPage)
def list_hosts(
    session: SessionDep,
    _: Viewer,
    selector: SelectorQuery = None,
    sort: Annotated[
        str, Query(pattern=SORT_PATTERN, description="prefix - to reverse")
    ] = "hostname",
    limit: Limit = 100,
    offset: Offset = 0,
) -> HostPage:
    """Hosts matching a selector; an unknown selector key is an error, never an empty match."""
    rows, total = paginate(
        session, service.query_hosts(selector=selector, sort=sort), limit=limit, offset=offset
    )
    return HostPage(
        items=[service.host_view(h) for h in rows], total=total, limit=limit, offset=offset
    )


@router.post("/hosts", response_model=HostRead, status_code=status.HTTP_201_CREATED)
def create_host(body: HostCreate, request: Request, session: SessionDep, who: Operator) -> HostRead:
    """Add a host."""
    return service.host_view(service.create_host(session, audit_context(request, who), body))


def _host(session: Any, hostname: str) -> Host:
    host = service.get_host(session, hostname=hostname)
    if host is None:
        raise HostNotFound(f"host {hostname!r} not found")
    return host


@router.get("/hosts/{hostname}", response_model=HostRead)
def get_host(hostname: str, session: SessionDep, _: Viewer) -> HostRead:
    """One host."""
    return service.host_view(_host(session, hostname))


@router.patch("/hosts/{hostname}", response_model=HostRead)
def update_host(
    hostname: str, body: HostUpdate, request: Request, session: SessionDep, who: Operator
) -> HostRead:
    """Change the fields sent."""
    host = _host(session, hostname)
    return service.host_view(service.update_host(session, audit_context(request, who), host, body))


@router.delete("/hosts/{hostname}", status_code=status.HTTP_204_NO_CONTENT)
def delete_host(hostname: str, request: Request, session: SessionDep, who: Operator) -> Response:
    """Remove a host that has no history.

    409 `HostHasHistory` when change runs, lifecycle transitions, repair tickets, probe runs or
    findings refer to it (`references` counts them): such a host is retired, never deleted."""
    service.delete_host(session, audit_context(request, who), _host(session, hostname))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/racks", response_model=list[RackRead])
def list_racks(session: SessionDep, _: Viewer, cluster: str | None = None) -> list[RackRead]:
    """Racks with their host counts by state."""
    return service.list_racks(session, cluster=cluster)


@router.post("/racks", response_model=RackRead, status_code=status.HTTP_201_CREATED)
def create_rack(body: RackCreate, request: Request, session: SessionDep, who: Operator) -> RackRead:
    """Add a rack to a datacenter."""
    return service.create_rack(session, audit_context(request, who), body)


@router.get("/racks/{name}", response_model=RackRead)
def get_rack(name: str, session: SessionDep, _: Viewer) -> RackRead:
    """One rack."""
    rack = service.get_rack(session, name=name)
    if rack is None:
        raise RackNotFound(f"rack {name!r} not found")
    return rack


@router.patch("/racks/{name}", response_model=RackRead)
def update_rack(
    name: str, body: RackUpdate, request: Request, session: SessionDep, who: Operator
) -> RackRead:
    """Change a rack's cluster or failure domains."""
    rack = service.update_rack(session, audit_context(request, who), name, body)
    if rack is None:
        raise RackNotFound(f"rack {name!r} not found")
    return rack


@router.delete("/racks/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rack(name: str, request: Request, session: SessionDep, who: Operator) -> Response:
    """Remove an empty rack; 409 `RackNotEmpty` (with `members`) while hosts or switches are in it,
    retired hosts included."""
    if not service.delete_rack(session, audit_context(request, who), name):
        raise RackNotFound(f"rack {name!r} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _named(session: Any, model: Any, fields: tuple[str, ...]) -> list[NamedRead]:
    rows = session.scalars(select(model).order_by(model.name))
    return [
        NamedRead(id=r.id, name=r.name, attributes={f: getattr(r, f) for f in fields}) for r in rows
    ]


@router.get("/regions", response_model=list[NamedRead])
def list_regions(session: SessionDep, _: Viewer) -> list[NamedRead]:
    """Regions."""
    return _named(session, Region, ("description",))


@router.get("/datacenters", response_model=list[NamedRead])
def list_datacenters(session: SessionDep, _: Viewer) -> list[NamedRead]:
    """Datacenters (attribute `region_id`)."""
    return _named(session, Datacenter, ("region_id",))


@router.get("/clusters", response_model=list[NamedRead])
def list_clusters(session: SessionDep, _: Viewer) -> list[NamedRead]:
    """Clusters and the scheduler that runs them."""
    return _named(session, Cluster, ("scheduler", "description"))


@router.get("/switches", response_model=list[NamedRead])
def list_switches(session: SessionDep, _: Viewer) -> list[NamedRead]:
    """ToR and spine switches."""
    return _named(session, Switch, ("role", "datacenter_id", "rack_id", "address"))


@router.get("/hardware-models", response_model=list[NamedRead])
def list_hardware_models(session: SessionDep, _: Viewer) -> list[NamedRead]:
    """Hardware models (SKUs)."""
    return _named(
        session, HardwareModel, ("vendor", "cpu_model", "cpu_cores", "memory_gb", "disks", "nics")
    )


@router.get("/links", response_model=list[LinkRead])
def list_links(
    session: SessionDep,
    _: Viewer,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[LinkRead]:
    """Network links: host→ToR and ToR→spine."""
    hosts = dict(session.execute(select(Host.id, Host.hostname)).all())
    switches = dict(session.execute(select(Switch.id, Switch.name)).all())
    rows = session.scalars(select(Link).order_by(Link.id).limit(limit).offset(offset))
    return [
        LinkRead(
            id=link.id,
            a=hosts[link.a_host_id] if link.a_host_id else switches[link.a_switch_id or 0],
            a_kind="host" if link.a_host_id else "switch",
            b=switches[link.b_switch_id],
            speed_gbps=link.speed_gbps,
        )
        for link in rows
    ]


@router.post("/inventory/import", response_model=ImportSummary)
def import_inventory(
    body: ImportRequest, request: Request, session: SessionDep, who: Operator
) -> ImportSummary:
    """Import a file (fleetops YAML/CSV, Ansible INI/YAML, NetBox CSV) as a whole or not at all."""
    fmt = body.format or formats.detect_format(body.filename, body.content)
    if fmt not in formats.FORMATS:
        raise InventoryImportFailed(
            f"unknown format {fmt!r}; expected one of {', '.join(formats.FORMATS)}"
        )
    try:
        doc = formats.parse(body.content, fmt)
        summary = apply.apply_document(session, audit_context(request, who), doc)
    except ImportFailed as exc:
        session.rollback()
        raise InventoryImportFailed(
            str(exc), extra={"issues": [i.model_dump() for i in exc.issues]}
        ) from None
    if body.dry_run:
        session.rollback()
    return ImportSummary(
        format=fmt,
        dry_run=body.dry_run,
        created=dict(summary.created),
        updated=dict(summary.updated),
        unchanged=dict(summary.unchanged),
    )


@router.get(
    "/inventory/export",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "the rendered file",
        }
    },
)
def export_inventory(
    session: SessionDep,
    _: Viewer,
    format: Annotated[
        str, Query(pattern="^(yaml|csv|ansible-ini|ansible-yaml|netbox-csv)$")
    ] = "yaml",
    selector: SelectorQuery = None,
) -> Response:
    """The inventory (or the hosts a selector picks) rendered in a format."""
    doc = apply.export_document(session, selector=selector)
    return PlainTextResponse(formats.render(doc, format))  # documented above
