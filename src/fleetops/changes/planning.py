"""What a submitted change will touch: its hosts per stage, their batches and its risk.

Submitting plans every stage up front so reviewers approve exactly which hosts are touched, in
which order; these are the steps of that plan, apart from the use case that records the change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.changes.approvals import Risk, classify
from fleetops.changes.exceptions import EmptyTargetSet, InvalidChange
from fleetops.changes.operations import OperationLibrary
from fleetops.changes.workflows import PlanHost, WorkflowSpec
from fleetops.changes.workflows import plan_batches as plan
from fleetops.inventory.selectors import select_hosts
from fleetops.models import ChangeRequest, Host, HostRun, Rack


def classify_risk(
    session: Session, spec: WorkflowSpec, *, library: OperationLibrary, hosts: int
) -> Risk:
    """The change's risk from its operations and the share of the fleet it touches."""
    fleet = session.scalar(select(func.count()).select_from(Host)) or 0
    risks = [
        operation_risk(library, step.operation, step.version)
        for stage in spec.stages
        for step in stage.steps
    ]
    return classify(risks, hosts=hosts, fleet=fleet)


def operation_risk(library: OperationLibrary, name: str, version: int | None) -> Risk:
    """The risk its library gives an operation a workflow step runs."""
    op = library.get(name, version)
    if op is None:
        raise InvalidChange(
            f"operation {name!r} (version {version or 'latest'}) is not in the "
            "library any more; register a workflow version that does not use it"
        )
    return Risk(op.risk)


def resolve_stages(session: Session, spec: WorkflowSpec, selector: str) -> list[list[Host]]:
    """The hosts of each stage: the selector, narrowed by the stage's own targets."""
    base = list(session.scalars(select_hosts(selector)))
    if not base:
        raise EmptyTargetSet(f"selector {selector!r} matches no host; a change needs targets")
    out: list[list[Host]] = []
    for stage in spec.stages:
        hosts = base
        if stage.targets:
            hosts = list(session.scalars(select_hosts(f"({selector}) and ({stage.targets})")))
        if not hosts:
            raise EmptyTargetSet(f"stage {stage.name!r} ({stage.targets!r}) selects no host")
        out.append(hosts)
    return out


def plan_stage(
    session: Session, change: ChangeRequest, index: int, hosts: list[Host], strategy: Any
) -> None:
    """Add the stage's host runs, batch by batch as its strategy orders them."""
    racks = {h.rack_id for h in hosts if h.rack_id}
    rack_rows = (
        session.execute(
            select(Rack.id, Rack.name, Rack.datacenter_id).where(Rack.id.in_(racks))
        ).all()
        if racks
        else []
    )
    rack_of = {rid: (name, dc) for rid, name, dc in rack_rows}
    plan_hosts = [
        PlanHost(
            hostname=h.hostname,
            rack=rack_of.get(h.rack_id or 0, (None, None))[0],
            cluster=str(h.cluster_id) if h.cluster_id else None,
            datacenter=str(rack_of.get(h.rack_id or 0, (None, None))[1] or "") or None,
        )
        for h in hosts
    ]
    by_name = {h.hostname: h for h in hosts}
    for batch_index, batch in enumerate(plan(plan_hosts, strategy)):
        for hostname in batch:
            session.add(
                HostRun(
                    change_id=change.id,
                    stage_index=index,
                    batch_index=batch_index,
                    host_id=by_name[hostname].id,
                    hostname=hostname,
                )
            )
    session.flush()
