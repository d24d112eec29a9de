"""Apply an inventory document to the database, all or nothing; and export one back.

References are resolved against the database *and* the document itself, every problem is collected
with its source line, and only a clean document is written. Existing entities are matched by name
and updated in place (only the fields the source set), so re-importing the same file changes
nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.devices import states as lifecycle
from fleetops.devices.enums import Lifecycle
from fleetops.inventory import selectors
from fleetops.inventory.document import (
    ClusterDoc,
    DatacenterDoc,
    HardwareModelDoc,
    HostDoc,
    HostFields,
    ImportFailed,
    ImportIssue,
    InventoryDoc,
    LatencyDoc,
    LinkDoc,
    RackDoc,
    RegionDoc,
    SwitchDoc,
)
from fleetops.inventory.service import host_options, host_view
from fleetops.models import (
    Cluster,
    Datacenter,
    DatacenterLatency,
    HardwareModel,
    Host,
    HostGroup,
    HostLabel,
    Link,
    Rack,
    Region,
    Switch,
)

# kind, document attribute, ORM class, key field
KINDS: list[tuple[str, str, Any, str]] = [
    ("region", "regions", Region, "name"),
    ("datacenter", "datacenters", Datacenter, "name"),
    ("cluster", "clusters", Cluster, "name"),
    ("hardware_model", "hardware_models", HardwareModel, "name"),
    ("rack", "racks", Rack, "name"),
    ("switch", "switches", Switch, "name"),
    ("host", "hosts", Host, "hostname"),
]


@dataclass
class Summary:
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)


@dataclass
class _Index:
    """Name → id of every entity, from the database plus the document (ids filled on write)."""

    ids: dict[str, dict[str, int | None]] = field(default_factory=dict)

    def knows(self, kind: str, name: str) -> bool:
        return name in self.ids.get(kind, {})

    def id(self, kind: str, name: str | None) -> int | None:
        return None if name is None else self.ids[kind][name]


def apply_document(session: Session, ctx: AuditContext, doc: InventoryDoc) -> Summary:
    """Validate every reference, then write the document in the caller's transaction."""
    index = _load_index(session, doc)
    issues = _check_duplicates(doc) + _check_references(doc, index)
    if issues:
        raise ImportFailed(sorted(issues, key=lambda i: (i.line or 0, i.message)))
    summary = Summary()
    for kind, attr, model, key in KINDS:
        existing = {getattr(o, key): o for o in _existing(session, model, key, getattr(doc, attr))}
        for item in getattr(doc, attr):
            _upsert(session, ctx, kind, model, key, item, existing, index, summary)
    _apply_latencies(session, ctx, doc.latencies, index, summary)
    _apply_links(session, ctx, doc.links, index, summary)
    return summary


def _existing(session: Session, model: Any, key: str, items: list[Any]) -> list[Any]:
    names = [getattr(i, key) for i in items]
    out: list[Any] = []
    for start in range(0, len(names), 500):
        stmt = select(model).where(getattr(model, key).in_(names[start : start + 500]))
        if model is Host:
            stmt = stmt.options(selectinload(Host.labels), selectinload(Host.groups))
        out.extend(session.scalars(stmt))
    return out


def _load_index(session: Session, doc: InventoryDoc) -> _Index:
    index = _Index()
    for kind, attr, model, key in KINDS:
        known: dict[str, int | None] = dict(
            session.execute(select(getattr(model, key), model.id)).all()
        )
        for item in getattr(doc, attr):
            known.setdefault(getattr(item, key), None)
        index.ids[kind] = known
    return index


def _check_duplicates(doc: InventoryDoc) -> list[ImportIssue]:
    issues: list[ImportIssue] = []
    for kind, attr, _model, key in KINDS:
        seen: dict[str, int | None] = {}
        for item in getattr(doc, attr):
            name = getattr(item, key)
            if name in seen:
                first = f" (first on line {seen[name]})" if seen[name] else ""
                issues.append(
                    ImportIssue(line=item.line, message=f"duplicate {kind} {name!r}{first}")
                )
            seen.setdefault(name, item.line)
    return issues


REFERENCES: dict[type[BaseModel], list[tuple[str, str]]] = {
    DatacenterDoc: [("region", "region")],
    RackDoc: [("datacenter", "datacenter"), ("cluster", "cluster")],
    SwitchDoc: [("datacenter", "datacenter"), ("rack", "rack")],
    HostDoc: [("rack", "rack"), ("cluster", "cluster"), ("model", "hardware_model")],
}


def _check_references(doc: InventoryDoc, index: _Index) -> list[ImportIssue]:
    issues: list[ImportIssue] = []
    for _kind, attr, _model, key in KINDS:
        for item in getattr(doc, attr):
            for field_name, ref_kind in REFERENCES.get(type(item), []):
                ref = getattr(item, field_name)
                if ref and not index.knows(ref_kind, ref):
                    issues.append(
                        ImportIssue(
                            line=item.line,
                            message=f"{getattr(item, key)!r}: unknown "
                            f"{ref_kind.replace('_', ' ')} {ref!r}",
                        )
                    )
    for lat in doc.latencies:
        for end in (lat.a, lat.b):
            if not index.knows("datacenter", end):
                issues.append(
                    ImportIssue(line=lat.line, message=f"latency: unknown datacenter {end!r}")
                )
    for link in doc.links:
        if not (index.knows("host", link.a) or index.knows("switch", link.a)):
            issues.append(
                ImportIssue(line=link.line, message=f"link: unknown host or switch {link.a!r}")
            )
        if not index.knows("switch", link.b):
            issues.append(ImportIssue(line=link.line, message=f"link: unknown switch {link.b!r}"))
    return issues


def _columns(kind: str, item: Any, index: _Index) -> dict[str, Any]:
    """The ORM column values an item sets (only the fields its source set)."""
    data = {k: getattr(item, k) for k in item.model_fields_set if k != "line"}
    refs = {
        "region": ("region_id", "region"),
        "datacenter": ("datacenter_id", "datacenter"),
        "cluster": ("cluster_id", "cluster"),
        "rack": ("rack_id", "rack"),
        "model": ("model_id", "hardware_model"),
    }
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name in refs and kind != "hardware_model":
            column, ref_kind = refs[name]
            out[column] = index.id(ref_kind, value or None)
        elif name not in ("labels", "groups"):
            out[name] = value
    return out


def _upsert(
    session: Session,
    ctx: AuditContext,
    kind: str,
    model: Any,
    key: str,
    item: Any,
    existing: dict[str, Any],
    index: _Index,
    summary: Summary,
) -> None:
    name = getattr(item, key)
    columns = _columns(kind, item, index)
    state = columns.pop("state", None)  # the lifecycle's to write, not a column to set
    obj = existing.get(name)
    if obj is None:
        obj = model(**{key: name})
        if kind == "host":
            obj.labels, obj.groups = [], []
            if "cluster_id" not in columns and columns.get("rack_id"):
                rack = session.get(Rack, columns["rack_id"])
                columns["cluster_id"] = rack.cluster_id if rack else None
        before = None
        session.add(obj)
    else:
        before = _snapshot(obj)
    for column, value in columns.items():
        setattr(obj, column, value)
    if kind == "host":
        if "labels" in item.model_fields_set or before is None:
            obj.labels = [HostLabel(key=k, value=v) for k, v in sorted(item.labels.items())]
        if "groups" in item.model_fields_set or before is None:
            obj.groups = [HostGroup(name=g) for g in sorted(set(item.groups))]
    session.flush()
    index.ids[kind][name] = obj.id
    if kind == "host":
        _place(session, ctx, obj, item, state, new=before is None)
    after = _snapshot(obj)
    if before is None:
        summary.created[kind] += 1
        audit.record(
            session, ctx, action=f"{kind}.create", entity_type=kind, entity_id=name, after=after
        )
    elif before != after:
        summary.updated[kind] += 1
        audit.record(
            session,
            ctx,
            action=f"{kind}.update",
            entity_type=kind,
            entity_id=name,
            before=before,
            after=after,
        )
    else:
        summary.unchanged[kind] += 1


def _place(
    session: Session, ctx: AuditContext, host: Host, item: HostDoc, state: str | None, *, new: bool
) -> None:
    """A new host starts in the state its document gives; a known host whose document names
    another state is moved by the lifecycle's rules, as the importer, like any other move. A move
    the rules refuse fails the whole import: the lifecycle is not edited by file."""
    if new:
        lifecycle.enrol(session, host, Lifecycle(state or lifecycle.INITIAL), ctx=ctx)
        return
    if state is None or (now := lifecycle.current(session, host)) == state:
        return
    try:
        lifecycle.transition(session, host, Lifecycle(state), ctx=ctx, reason="inventory import")
    except lifecycle.TransitionRefused as exc:
        raise ImportFailed(
            [
                ImportIssue(
                    line=item.line,
                    message=f"{host.hostname!r}: state {now} → {state} refused: {exc.detail}. "
                    "Move a device with `fleetops device transition` (operators may override, "
                    "with a reason), then import again",
                )
            ]
        ) from None


def _snapshot(obj: Any) -> dict[str, Any]:
    view = {
        c.key: getattr(obj, c.key)
        for c in obj.__table__.columns
        if c.key not in ("id", "created_at", "updated_at")
    }
    if isinstance(obj, Host):
        view["labels"] = {label.key: label.value for label in obj.labels}
        view["groups"] = sorted(g.name for g in obj.groups)
    return view


def _apply_latencies(
    session: Session, ctx: AuditContext, items: list[LatencyDoc], index: _Index, summary: Summary
) -> None:
    for lat in items:
        a, b = sorted((index.id("datacenter", lat.a) or 0, index.id("datacenter", lat.b) or 0))
        row = session.scalar(
            select(DatacenterLatency).where(
                DatacenterLatency.a_id == a, DatacenterLatency.b_id == b
            )
        )
        if row is not None and row.rtt_ms == lat.rtt_ms:
            summary.unchanged["latency"] += 1
            continue
        before = None if row is None else {"rtt_ms": row.rtt_ms}
        if row is None:
            row = DatacenterLatency(a_id=a, b_id=b, rtt_ms=lat.rtt_ms)
            session.add(row)
            summary.created["latency"] += 1
        else:
            row.rtt_ms = lat.rtt_ms
            summary.updated["latency"] += 1
        session.flush()
        audit.record(
            session,
            ctx,
            action="latency.set",
            entity_type="latency",
            entity_id=f"{lat.a}<->{lat.b}",
            before=before,
            after={"rtt_ms": lat.rtt_ms},
        )


def _apply_links(
    session: Session, ctx: AuditContext, items: list[LinkDoc], index: _Index, summary: Summary
) -> None:
    for link in items:
        b_id = index.id("switch", link.b)
        host_id = index.ids["host"].get(link.a)
        switch_id = None if host_id is not None else index.id("switch", link.a)
        row = session.scalar(
            select(Link).where(
                Link.a_host_id == host_id if host_id is not None else Link.a_switch_id == switch_id,
                Link.b_switch_id == b_id,
            )
        )
        if row is not None and row.speed_gbps == link.speed_gbps:
            summary.unchanged["link"] += 1
            continue
        if row is None:
            row = Link(
                a_host_id=host_id,
                a_switch_id=switch_id,
                b_switch_id=b_id,
                speed_gbps=link.speed_gbps,
            )
            session.add(row)
            summary.created["link"] += 1
        else:
            row.speed_gbps = link.speed_gbps
            summary.updated["link"] += 1
        session.flush()
        audit.record(
            session,
            ctx,
            action="link.set",
            entity_type="link",
            entity_id=f"{link.a}->{link.b}",
            after={"speed_gbps": link.speed_gbps},
        )


# --- export -----------------------------------------------------------------------------------


def export_document(session: Session, *, selector: str | None = None) -> InventoryDoc:
    """The inventory as a document; with a selector, only those hosts (and their links)."""
    hosts_stmt = select(Host).options(*host_options()).order_by(Host.hostname)
    if selector:
        hosts_stmt = hosts_stmt.where(selectors.to_clause(selectors.parse(selector)))
    hosts = list(session.scalars(hosts_stmt).unique())
    names = _names(session)
    doc = InventoryDoc(
        regions=[
            RegionDoc(name=r.name, description=r.description)
            for r in session.scalars(select(Region).order_by(Region.name))
        ],
        datacenters=[
            DatacenterDoc(name=d.name, region=names["region"][d.region_id])
            for d in session.scalars(select(Datacenter).order_by(Datacenter.name))
        ],
        latencies=[
            LatencyDoc(
                a=names["datacenter"][x.a_id], b=names["datacenter"][x.b_id], rtt_ms=x.rtt_ms
            )
            for x in session.scalars(select(DatacenterLatency).order_by(DatacenterLatency.id))
        ],
        clusters=[
            ClusterDoc(name=c.name, scheduler=c.scheduler, description=c.description)
            for c in session.scalars(select(Cluster).order_by(Cluster.name))
        ],
        hardware_models=_export_hardware_models(session),
        racks=_export_racks(session, names),
        switches=_export_switches(session, names),
        hosts=[_host_doc(h) for h in hosts],
        links=_export_links(
            session, names, {h.id: h.hostname for h in hosts}, full=selector is None
        ),
    )
    return doc


def _export_hardware_models(session: Session) -> list[HardwareModelDoc]:
    """Every hardware model with its specification, by name."""
    return [
        HardwareModelDoc(
            name=m.name,
            vendor=m.vendor,
            cpu_model=m.cpu_model,
            cpu_cores=m.cpu_cores,
            memory_gb=m.memory_gb,
            disks=m.disks,
            nics=m.nics,
        )
        for m in session.scalars(select(HardwareModel).order_by(HardwareModel.name))
    ]


def _export_racks(session: Session, names: dict[str, dict[int, str]]) -> list[RackDoc]:
    """Every rack, by name, its datacenter and cluster named as the document refers to them."""
    return [
        RackDoc(
            name=r.name,
            datacenter=names["datacenter"][r.datacenter_id],
            cluster=names["cluster"].get(r.cluster_id or 0),
            failure_domains=r.failure_domains,
        )
        for r in session.scalars(select(Rack).order_by(Rack.name))
    ]


def _export_switches(session: Session, names: dict[str, dict[int, str]]) -> list[SwitchDoc]:
    """Every switch, by name, its datacenter and rack named as the document refers to them."""
    return [
        SwitchDoc(
            name=s.name,
            role=s.role,
            datacenter=names["datacenter"][s.datacenter_id],
            rack=names["rack"].get(s.rack_id or 0),
            address=s.address,
        )
        for s in session.scalars(select(Switch).order_by(Switch.name))
    ]


def _names(session: Session) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for kind, _attr, model, key in KINDS:
        if kind != "host":
            out[kind] = dict(session.execute(select(model.id, getattr(model, key))).all())
    return out


def _host_doc(h: Host) -> HostDoc:
    fields = set(HostFields.model_fields)
    return HostDoc.model_validate(host_view(h).model_dump(include=fields))


def _export_links(
    session: Session, names: dict[str, dict[int, str]], hosts: dict[int, str], *, full: bool
) -> list[LinkDoc]:
    out: list[LinkDoc] = []
    for link in session.scalars(select(Link).order_by(Link.id)):
        if link.a_host_id is not None:
            if link.a_host_id not in hosts:
                continue
            a = hosts[link.a_host_id]
        elif full:
            a = names["switch"][link.a_switch_id or 0]
        else:
            continue
        out.append(LinkDoc(a=a, b=names["switch"][link.b_switch_id], speed_gbps=link.speed_gbps))
    return out
