"""Switching a slow link: from the rack links' latency to a change that shifts traffic away.

fleetops never talks to a switch itself. A link switch is a change running the shipped
`shift-link` workflow on a *management host*: the machine that reaches the switches, labelled
with the tool it uses (`network_cli=eos|nxos|junos|script`). So it is approved (four eyes: its
operation is high risk), executed, audited and rolled back like any other change, the approver
sees the exact lines sent to the switch, and the server opens no connection toward a switch a
user names. Which switch is suspected comes from the link rollups: a congested uplink slows
every cross-rack transfer of its rack, so of a slow pair, the rack slow with more peers is the
likelier culprit.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.changes import service as changes
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.operations import OperationLibrary
from fleetops.devices.enums import Lifecycle
from fleetops.logs.diagnosis.repository import SLOW_CELL, LinkCell, TimeRange, link_matrix
from fleetops.models import ChangeRequest
from fleetops.models.inventory import Host, HostLabel, Rack, Switch
from fleetops.network.exceptions import NoManagementHost, SwitchNotFound
from fleetops.network.schemas import LinkSuspects, LinkSwitchCreate, Suspect

WORKFLOW = "shift-link"
TOOL_LABEL = "network_cli"
SUSPECT_SPAN = timedelta(minutes=5)  # as the live screen ranks its hot links
ROLLUP_SECONDS = 10  # as the live screen: a congestion shows in its first windows


def management_hosts(session: Session) -> list[str]:
    """Hosts that reach the switches (labelled `network_cli`), in service, by name."""
    stmt = (
        select(Host.hostname)
        .join(HostLabel, HostLabel.host_id == Host.id)
        .where(HostLabel.key == TOOL_LABEL, Host.state != Lifecycle.RETIRED)
        .order_by(Host.hostname)
    )
    return list(session.scalars(stmt))


def tor_of(session: Session, racks: list[str]) -> dict[str, str]:
    """Rack → its ToR switch's name, for the racks that have one."""
    stmt = (
        select(Rack.name, Switch.name)
        .join(Switch, Switch.rack_id == Rack.id)
        .where(Rack.name.in_(racks), Switch.role == "tor")
        .order_by(Switch.name)
    )
    found: dict[str, str] = {}
    for rack, switch in session.execute(stmt):
        found.setdefault(rack, switch)
    return found


def suspects(session: Session, src_rack: str, dst_rack: str, now: datetime) -> LinkSuspects:
    """The two racks of a slow pair, the likelier culprit first, with the evidence."""
    matrix = link_matrix(session, seconds=ROLLUP_SECONDS, rng=TimeRange(now - SUSPECT_SPAN, now))
    by_rack: dict[str, list[LinkCell]] = defaultdict(list)
    for cell in matrix.cells:
        if cell.src_rack != cell.dst_rack and cell.transfers:
            by_rack[cell.src_rack].append(cell)
            by_rack[cell.dst_rack].append(cell)
    racks = list(dict.fromkeys([src_rack, dst_rack]))
    tors = tor_of(session, racks)
    found = []
    for rack in racks:
        cells = by_rack.get(rack, [])
        peers: dict[str, bool] = {}
        for cell in cells:
            peer = cell.dst_rack if cell.src_rack == rack else cell.src_rack
            peers[peer] = peers.get(peer, False) or cell.slow_fraction >= SLOW_CELL
        transfers = sum(c.transfers for c in cells)
        found.append(
            Suspect(
                rack=rack,
                switch=tors.get(rack),
                slow_peers=sum(peers.values()),
                peers=len(peers),
                slow_fraction=round(sum(c.slow for c in cells) / transfers, 4) if transfers else 0,
            )
        )
    found.sort(key=lambda s: (s.slow_peers, s.slow_fraction), reverse=True)
    return LinkSuspects(
        src_rack=src_rack,
        dst_rack=dst_rack,
        minutes=int(SUSPECT_SPAN.total_seconds() // 60),
        suspects=found,
        via=management_hosts(session),
    )


def propose(
    session: Session,
    ctx: AuditContext,
    request: LinkSwitchCreate,
    *,
    interface: str,
    library: OperationLibrary,
    policy: ApprovalPolicy,
) -> ChangeRequest:
    """Submit the change that drains the link; it waits for approval like any other.

    `interface` is the site's default for a ToR's uplinks, used when the request names none."""
    if session.scalar(select(Switch.id).where(Switch.name == request.switch)) is None:
        raise SwitchNotFound(f"switch {request.switch!r} is not in the inventory")
    hosts = management_hosts(session)
    if not hosts:
        raise NoManagementHost(
            f"no management host: label the host that reaches your switches with "
            f"{TOOL_LABEL}=eos|nxos|junos|script (see docs/live.md)"
        )
    via = request.via or hosts[0]
    if via not in hosts:
        raise NoManagementHost(
            f"{via!r} is not a management host (labelled {TOOL_LABEL}); these are: "
            + ", ".join(hosts)
        )
    port = request.interface or interface
    if request.action == "drain":
        title = f"Shift traffic off {request.switch} {port}"
        reason = request.reason.strip() or f"Slow links through {request.switch}."
    else:
        title = f"Restore traffic to {request.switch} {port}"
        reason = request.reason.strip() or f"{request.switch} {port} is healthy again."
    return changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=WORKFLOW,
            title=title,
            selector=f"host={via}",
            params={"switch": request.switch, "interface": port, "action": request.action},
            reason=reason,
        ),
        library=library,
        policy=policy,
    )
