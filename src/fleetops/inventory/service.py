"""Inventory use cases: query hosts and racks, edit them, and apply imported documents.

Every mutation writes an audit record with the entity's before/after view.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.devices import states as lifecycle
from fleetops.devices.enums import Lifecycle
from fleetops.findings import service as findings_service
from fleetops.inventory import selectors
from fleetops.inventory.exceptions import (
    HostHasHistory,
    HostnameTaken,
    InvalidSort,
    RackNameTaken,
    RackNotEmpty,
    UnknownReference,
)
from fleetops.inventory.schemas import (
    HostCreate,
    HostRead,
    HostUpdate,
    RackCreate,
    RackRead,
    RackUpdate,
)
from fleetops.models import (
    Base,
    Cluster,
    Datacenter,
    HardwareModel,
    Host,
    HostGroup,
    HostLabel,
    Rack,
    Switch,
)

HOST_SORTS: dict[str, Any] = {
    "hostname": Host.hostname,
    "address": Host.address,
    "state": Host.state,
    "updated_at": Host.updated_at,
    # Sorting by a related name goes through a left join on (id, name) of that table.
    "rack": (Host.rack_id, select(Rack.id, Rack.name.label("sort_name"))),
    "cluster": (Host.cluster_id, select(Cluster.id, Cluster.name.label("sort_name"))),
    "model": (Host.model_id, select(HardwareModel.id, HardwareModel.name.label("sort_name"))),
}


def host_options() -> list[Any]:
    """Eager loads every host view needs (relationships are lazy='raise')."""
    return [
        joinedload(Host.rack).joinedload(Rack.datacenter),
        joinedload(Host.cluster),
        joinedload(Host.model),
        selectinload(Host.labels),
        selectinload(Host.groups),
    ]


def host_view(host: Host) -> HostRead:
    return HostRead(
        id=host.id,
        hostname=host.hostname,
        address=host.address,
        ssh_port=host.ssh_port,
        ssh_user=host.ssh_user,
        model=host.model.name if host.model else None,
        rack=host.rack.name if host.rack else None,
        cluster=host.cluster.name if host.cluster else None,
        datacenter=host.rack.datacenter.name if host.rack else None,
        state=host.state,
        labels={label.key: label.value for label in host.labels},
        groups=[group.name for group in host.groups],
        created_at=host.created_at,
        updated_at=host.updated_at,
    )


def _audit_view(host: Host) -> dict[str, Any]:
    view = host_view(host).model_dump(exclude={"created_at", "updated_at", "id"})
    return view


def query_hosts(*, selector: str | None = None, sort: str = "hostname") -> Select[Host]:
    """Hosts matching a selector (all but the retired when None), sorted by a known column
    (`-col` descending)."""
    key = sort.removeprefix("-")
    if key not in HOST_SORTS:
        raise InvalidSort(
            f"unknown sort {sort!r}; expected one of {', '.join(HOST_SORTS)} (prefix - to reverse)"
        )
    stmt = select(Host).options(*host_options())
    if selector is not None:
        stmt = stmt.where(selectors.to_clause(selectors.parse(selector)))
    else:
        stmt = stmt.where(Host.state != selectors.RETIRED)
    column = HOST_SORTS[key]
    if isinstance(column, tuple):
        fk, names = column[0], column[1].subquery()
        stmt = stmt.outerjoin(names, fk == names.c.id)
        column = names.c.sort_name
    ordered = column.desc() if sort.startswith("-") else column.asc()
    return stmt.order_by(ordered, Host.hostname)


def get_host(session: Session, *, hostname: str) -> Host | None:
    return session.scalar(select(Host).options(*host_options()).where(Host.hostname == hostname))


def addresses(session: Session) -> list[tuple[str, str]]:
    """(hostname, address) of every host: whom a sender at an address may speak for."""
    return [(h, a) for h, a in session.execute(select(Host.hostname, Host.address))]


def _lookup(session: Session, model: Any, name: str | None, what: str) -> Any:
    if name is None or name == "":
        return None
    obj = session.scalar(select(model).where(model.name == name))
    if obj is None:
        raise UnknownReference(f"unknown {what} {name!r}")
    return obj


def _set_labels(host: Host, labels: dict[str, str]) -> None:
    host.labels = [HostLabel(key=k, value=v) for k, v in sorted(labels.items())]


def _set_groups(host: Host, groups: list[str]) -> None:
    host.groups = [HostGroup(name=g) for g in sorted(set(groups))]


def create_host(session: Session, ctx: AuditContext, data: HostCreate) -> Host:
    """Add one host; its cluster defaults to its rack's."""
    if session.scalar(select(Host.id).where(Host.hostname == data.hostname)) is not None:
        raise HostnameTaken(f"host {data.hostname!r} already exists")
    rack = _lookup(session, Rack, data.rack, "rack")
    cluster = _lookup(session, Cluster, data.cluster, "cluster")
    model = _lookup(session, HardwareModel, data.model, "hardware model")
    host = Host(
        hostname=data.hostname,
        address=data.address,
        ssh_port=data.ssh_port,
        ssh_user=data.ssh_user,
        rack_id=rack.id if rack else None,
        cluster_id=cluster.id if cluster else (rack.cluster_id if rack else None),
        model_id=model.id if model else None,
        labels=[],
        groups=[],
    )
    _set_labels(host, data.labels)
    _set_groups(host, data.groups)
    session.add(host)
    session.flush()
    lifecycle.enrol(session, host, Lifecycle(data.state), ctx=ctx)
    fresh = get_host(session, hostname=host.hostname)
    assert fresh is not None
    audit.record(
        session,
        ctx,
        action="host.create",
        entity_type="host",
        entity_id=host.hostname,
        after=_audit_view(fresh),
    )
    return fresh


def update_host(session: Session, ctx: AuditContext, host: Host, changes: HostUpdate) -> Host:
    """Apply the fields that were sent."""
    before = _audit_view(host)
    fields = changes.model_dump(exclude_unset=True)
    for name in ("address", "ssh_port", "ssh_user"):
        if name in fields and fields[name] is not None:
            setattr(host, name, fields[name])
    if "rack" in fields:
        rack = _lookup(session, Rack, fields["rack"], "rack")
        host.rack_id = rack.id if rack else None
    if "cluster" in fields:
        cluster = _lookup(session, Cluster, fields["cluster"], "cluster")
        host.cluster_id = cluster.id if cluster else None
    if "model" in fields:
        model = _lookup(session, HardwareModel, fields["model"], "hardware model")
        host.model_id = model.id if model else None
    if fields.get("labels") is not None:
        _set_labels(host, fields["labels"])
    if fields.get("groups") is not None:
        _set_groups(host, fields["groups"])
    session.flush()
    session.expire(host)
    fresh = get_host(session, hostname=host.hostname)
    assert fresh is not None
    after = _audit_view(fresh)
    if after != before:
        audit.record(
            session,
            ctx,
            action="host.update",
            entity_type="host",
            entity_id=host.hostname,
            before=before,
            after=after,
        )
    return fresh


# What a row naming a host records, by table: read by an operator in a refusal.
HISTORY_KINDS = {
    "host_runs": "change runs",
    "device_transitions": "lifecycle transitions",
    "repair_tickets": "repair tickets",
    "probe_runs": "inspection probe runs",
}


# The host's lifecycle state now, given at enrolment: it goes with the host (every move it made
# is history, in device_transitions).
NOT_HISTORY = {"device_states"}


def history_of(session: Session, host: Host) -> dict[str, int]:
    """What records the host's past, by kind: every row of another table whose foreign key names
    it without going with it (RESTRICT: a new table of that kind counts without a change here),
    and the findings about it. Empty: nothing would be lost by deleting it."""
    hosts = Host.__table__
    found: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if (
                fk.column.table is not hosts
                or fk.ondelete == "CASCADE"
                or table.name in NOT_HISTORY
            ):
                continue
            n = session.scalar(select(func.count()).where(fk.parent == host.id)) or 0
            if n:
                found[HISTORY_KINDS.get(table.name, table.name)] = n
    n = findings_service.count_about(session, entity_type="host", entity=host.hostname)
    if n:
        found["findings"] = n
    return found


def delete_host(session: Session, ctx: AuditContext, host: Host) -> None:
    """Delete a host that has no history; one with history is refused and pointed to retirement."""
    if history := history_of(session, host):
        listed = ", ".join(f"{n} {kind}" for kind, n in history.items())
        raise HostHasHistory(
            f"host {host.hostname!r} has history ({listed}), which deleting it would lose; "
            f"retire it instead: fleetops device transition {host.hostname} retired -m REASON "
            f"(POST /api/v1/devices/{host.hostname}/transition, to: retired; a host in service "
            "is drained first, or the move is an --override). Retired hosts leave lists and "
            "selectors and keep their history",
            extra={"references": history},
        )
    before = _audit_view(host)
    lifecycle.forget(session, host)
    session.delete(host)
    session.flush()
    audit.record(
        session,
        ctx,
        action="host.delete",
        entity_type="host",
        entity_id=host.hostname,
        before=before,
    )


# --- racks ------------------------------------------------------------------------------------


def _rack_query() -> Select[Rack]:
    return select(Rack).options(
        joinedload(Rack.datacenter).joinedload(Datacenter.region), joinedload(Rack.cluster)
    )


def list_racks(session: Session, *, cluster: str | None = None) -> list[RackRead]:
    """Racks with their host counts by state."""
    stmt = _rack_query().order_by(Rack.name)
    if cluster:
        stmt = stmt.join(Cluster, Rack.cluster_id == Cluster.id).where(Cluster.name == cluster)
    racks = list(session.scalars(stmt))
    counts: dict[int, Counter[str]] = {}
    rows = session.execute(
        select(Host.rack_id, Host.state, func.count()).group_by(Host.rack_id, Host.state)
    )
    for rack_id, state, n in rows:
        if rack_id is not None:
            counts.setdefault(rack_id, Counter())[state] = n
    return [rack_view(r, counts.get(r.id, Counter())) for r in racks]


def rack_view(rack: Rack, by_state: Counter[str]) -> RackRead:
    return RackRead(
        id=rack.id,
        name=rack.name,
        datacenter=rack.datacenter.name,
        region=rack.datacenter.region.name,
        cluster=rack.cluster.name if rack.cluster else None,
        failure_domains=dict(rack.failure_domains or {}),
        host_count=sum(by_state.values()),
        hosts_by_state=dict(sorted(by_state.items())),
    )


def get_rack(session: Session, *, name: str) -> RackRead | None:
    rack = session.scalar(_rack_query().where(Rack.name == name))
    if rack is None:
        return None
    rows = session.execute(
        select(Host.state, func.count()).where(Host.rack_id == rack.id).group_by(Host.state)
    )
    return rack_view(rack, Counter(dict(rows.all())))


def create_rack(session: Session, ctx: AuditContext, data: RackCreate) -> RackRead:
    if session.scalar(select(Rack.id).where(Rack.name == data.name)) is not None:
        raise RackNameTaken(f"rack {data.name!r} already exists")
    dc = _lookup(session, Datacenter, data.datacenter, "datacenter")
    cluster = _lookup(session, Cluster, data.cluster, "cluster")
    session.add(
        Rack(
            name=data.name,
            datacenter_id=dc.id,
            cluster_id=cluster.id if cluster else None,
            failure_domains=data.failure_domains,
        )
    )
    session.flush()
    view = get_rack(session, name=data.name)
    assert view is not None
    audit.record(
        session,
        ctx,
        action="rack.create",
        entity_type="rack",
        entity_id=data.name,
        after=view.model_dump(exclude={"id", "host_count", "hosts_by_state"}),
    )
    return view


def update_rack(
    session: Session, ctx: AuditContext, name: str, changes: RackUpdate
) -> RackRead | None:
    rack = session.scalar(select(Rack).where(Rack.name == name))
    before = get_rack(session, name=name)
    if rack is None or before is None:
        return None
    fields = changes.model_dump(exclude_unset=True)
    if "cluster" in fields:
        cluster = _lookup(session, Cluster, fields["cluster"], "cluster")
        rack.cluster_id = cluster.id if cluster else None
    if fields.get("failure_domains") is not None:
        rack.failure_domains = fields["failure_domains"]
    session.flush()
    session.expire(rack)
    after = get_rack(session, name=name)
    assert after is not None
    skip = {"id", "host_count", "hosts_by_state"}
    audit.record(
        session,
        ctx,
        action="rack.update",
        entity_type="rack",
        entity_id=name,
        before=before.model_dump(exclude=skip),
        after=after.model_dump(exclude=skip),
    )
    return after


def delete_rack(session: Session, ctx: AuditContext, name: str) -> bool:
    rack = session.scalar(select(Rack).where(Rack.name == name))
    if rack is None:
        return False
    hosts = session.scalar(select(func.count()).where(Host.rack_id == rack.id)) or 0
    switches = session.scalar(select(func.count()).where(Switch.rack_id == rack.id)) or 0
    if hosts or switches:
        held = " and ".join(
            f"{n} {what}" for n, what in ((hosts, "host(s)"), (switches, "switch(es)")) if n
        )
        raise RackNotEmpty(
            f"rack {name!r} still holds {held} (retired hosts included: they keep their "
            "history); move them to another rack first",
            extra={"members": {"hosts": hosts, "switches": switches}},
        )
    session.delete(rack)
    session.flush()
    audit.record(session, ctx, action="rack.delete", entity_type="rack", entity_id=name)
    return True


# --- topology ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """Where each host sits in the network, for mapping log evidence onto the leaf–spine fabric."""

    rack_of: dict[str, str]  # hostname -> rack
    tor_of_rack: dict[str, str]  # rack -> ToR switch name (the rack's name when none is known)
    host_of_address: dict[str, str]  # IP address -> hostname
    dc_of_rack: dict[str, str] = field(default_factory=dict)  # rack -> datacenter

    def tor(self, host: str) -> str | None:
        rack = self.rack_of.get(host)
        return self.tor_of_rack.get(rack, rack) if rack else None


def topology(session: Session) -> Topology:
    racks = dict(session.execute(select(Rack.id, Rack.name)).all())
    dcs = dict(session.execute(select(Datacenter.id, Datacenter.name)).all())
    dc_of_rack = {
        name: dcs[dc_id]
        for name, dc_id in session.execute(select(Rack.name, Rack.datacenter_id))
        if dc_id in dcs
    }
    rack_of: dict[str, str] = {}
    by_address: dict[str, str] = {}
    for hostname, address, rack_id in session.execute(
        select(Host.hostname, Host.address, Host.rack_id)
    ):
        if rack_id in racks:
            rack_of[hostname] = racks[rack_id]
        if address:
            by_address[address] = hostname
    tors: dict[str, str] = {}
    for name, rack_id in session.execute(
        select(Switch.name, Switch.rack_id).where(Switch.role == "tor", Switch.rack_id.is_not(None))
    ):
        if rack_id in racks:
            tors.setdefault(racks[rack_id], name)
    return Topology(rack_of, {r: tors.get(r, r) for r in racks.values()}, by_address, dc_of_rack)
