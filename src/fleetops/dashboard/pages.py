"""The web UI's pages: overview, hosts, racks and the audit log.

Read-only views over the domain services. Every piece of state (filter, sort, page) is in the URL,
so any view can be bookmarked or pasted into a ticket; htmx only makes the same requests faster.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.auth.dependencies import SessionDep
from fleetops.dashboard.login import router as login_router
from fleetops.dashboard.render import PageUser, page, pager, state_items
from fleetops.errors import NotFound
from fleetops.inventory import service as inventory
from fleetops.inventory.schemas import RackRead
from fleetops.inventory.selectors import SelectorError
from fleetops.kit.pagination import paginate

router = APIRouter(include_in_schema=False)
router.include_router(login_router)

PAGE_SIZES = (25, 50, 100, 250, 500)
DEFAULT_LIMIT = 50
HOST_COLUMNS = [  # (label, sort key or None when the column is not sortable)
    ("Hostname", "hostname"),
    ("Address", "address"),
    ("State", "state"),
    ("Rack", "rack"),
    ("Cluster", "cluster"),
    ("Datacenter", None),
    ("Model", "model"),
    ("Role", None),
    ("Updated", "updated_at"),
]
Limit = Annotated[int, Query(ge=1, le=max(PAGE_SIZES))]
Offset = Annotated[int, Query(ge=0)]


def state_counts(session: Session, hosts: Select[Any]) -> dict[str, int]:
    """Count the hosts of a query by state, in the database (the query may match thousands)."""
    sub = hosts.order_by(None).subquery()
    rows = session.execute(select(sub.c.state, func.count()).group_by(sub.c.state))
    return dict(state_items(dict(rows.all())))


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, session: SessionDep, who: PageUser) -> HTMLResponse:
    """Fleet at a glance: hosts by state, clusters, datacenters, latest audit records."""
    racks = inventory.list_racks(session)
    by_state = state_counts(session, inventory.query_hosts())
    clusters: Counter[str] = Counter()
    datacenters: dict[str, dict[str, int]] = defaultdict(lambda: {"racks": 0, "hosts": 0})
    for rack in racks:
        clusters[rack.cluster or "—"] += rack.host_count
        datacenters[rack.datacenter]["racks"] += 1
        datacenters[rack.datacenter]["hosts"] += rack.host_count
    recent, _ = paginate(session, audit.query(), limit=8, offset=0)
    return page(
        request,
        "overview.html",
        who,
        by_state=by_state,
        host_total=sum(by_state.values()),
        rack_total=len(racks),
        clusters=sorted(clusters.items()),
        datacenters=sorted(datacenters.items()),
        recent=recent,
    )


@router.get("/hosts", response_class=HTMLResponse)
def hosts(
    request: Request,
    session: SessionDep,
    who: PageUser,
    selector: Annotated[str, Query(max_length=4096)] = "",
    sort: Annotated[str, Query(max_length=32)] = "hostname",
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> HTMLResponse:
    """Hosts matching a selector, sortable and paginated; a bad selector is explained in place."""
    selector = selector.strip()
    params = {
        "selector": selector,
        "sort": sort if sort != "hostname" else "",
        "limit": limit if limit != DEFAULT_LIMIT else "",
    }
    rows: list[Any] = []
    total, by_state, error = 0, {}, None
    try:
        stmt = inventory.query_hosts(selector=selector or None, sort=sort)
        rows, total = paginate(session, stmt, limit=limit, offset=offset)
        by_state = state_counts(session, stmt) if total else {}
    except SelectorError as exc:
        error = exc.detail
    # An htmx swap of the results asks for just that fragment; history restores want the page.
    partial = request.headers.get("hx-target") == "results" and not request.headers.get(
        "hx-history-restore-request"
    )
    response = page(
        request,
        "hosts_results.html" if partial else "hosts.html",
        who,
        status_code=400 if error else 200,
        error=error,
        selector=selector,
        sort=sort,
        limit=limit,
        offset=offset,
        params=params,
        hosts=[inventory.host_view(h) for h in rows],
        total=total,
        by_state=by_state,
        pager=pager(total, limit, offset),
        columns=HOST_COLUMNS,
        page_sizes=PAGE_SIZES,
    )
    response.headers["Vary"] = "HX-Request, HX-Target"
    return response


@router.get("/hosts/{hostname}", response_class=HTMLResponse)
def host_detail(
    request: Request, hostname: str, session: SessionDep, who: PageUser
) -> HTMLResponse:
    """One host: every field, where it sits, and what was recently done to it."""
    host = inventory.get_host(session, hostname=hostname)
    if host is None:
        raise NotFound(f"host {hostname!r} not found")
    view = inventory.host_view(host)
    rack = inventory.get_rack(session, name=view.rack) if view.rack else None
    records, record_total = paginate(
        session, audit.query(entity_type="host", entity_id=hostname), limit=20, offset=0
    )
    return page(
        request, "host.html", who, host=view, rack=rack, records=records, record_total=record_total
    )


@router.get("/racks", response_class=HTMLResponse)
def racks(request: Request, session: SessionDep, who: PageUser) -> HTMLResponse:
    """Racks by datacenter with their hosts' states and shared failure domains."""
    grouped: dict[tuple[str, str], list[RackRead]] = defaultdict(list)
    for rack in inventory.list_racks(session):
        grouped[(rack.region, rack.datacenter)].append(rack)
    sites = [
        {
            "region": region,
            "datacenter": dc,
            "racks": items,
            "hosts": sum(r.host_count for r in items),
        }
        for (region, dc), items in sorted(grouped.items())
    ]
    return page(request, "racks.html", who, sites=sites)


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    session: SessionDep,
    who: PageUser,
    actor: Annotated[str, Query(max_length=128)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    entity_type: Annotated[str, Query(max_length=64)] = "",
    entity_id: Annotated[str, Query(max_length=256)] = "",
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    verify: bool = False,
) -> HTMLResponse:
    """The audit log, newest first; the hash chain is verified on request (it reads every row)."""
    actor, action = actor.strip(), action.strip()
    params = {
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "limit": limit if limit != DEFAULT_LIMIT else "",
    }
    checked = audit.verify(session) if verify else None
    stmt = audit.query(
        actor=actor or None,
        action=action or None,
        entity_type=entity_type or None,
        entity_id=entity_id or None,
    )
    records, total = paginate(session, stmt, limit=limit, offset=offset)
    return page(
        request,
        "audit.html",
        who,
        records=records,
        total=total,
        params=params,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        limit=limit,
        offset=offset,
        pager=pager(total, limit, offset),
        verified=checked,
        page_sizes=PAGE_SIZES,
    )
