"""Build the demo database: the generated fleet, one user per role, the shipped workflows and a
few change requests, so a visitor sees approvals and a live rollout within minutes."""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fleetops.analytics.resources import service as resources
from fleetops.analytics.resources.advice import compute
from fleetops.analytics.resources.scheduler import Site
from fleetops.analytics.storage.analyses import analyze
from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.readers import read_input
from fleetops.analytics.storage.schemas import Options
from fleetops.analytics.storage.service import collect_facts, save_report
from fleetops.audit.service import AuditContext
from fleetops.auth import service as auth_service
from fleetops.auth.roles import Role
from fleetops.changes import service as changes
from fleetops.changes import standard
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.operations import OperationLibrary, load_library
from fleetops.config import Settings
from fleetops.db import make_engine, make_session_factory, session_scope, upgrade
from fleetops.inspection import service as inspection
from fleetops.inventory.apply import apply_document
from fleetops.inventory.document import HostDoc, InventoryDoc
from fleetops.logs import service as logs_service
from fleetops.sim import business
from fleetops.sim.business import ShopFeed
from fleetops.sim.executor import SimulatedExecutor
from fleetops.sim.faults import UPLINK, Fault, schedule_faults, targets, tor_of
from fleetops.sim.feeder import LiveFeed
from fleetops.sim.fleet import generate
from fleetops.sim.namespace import namespace
from fleetops.sim.predictions import report_predictions as predict
from fleetops.sim.repairshop import RepairShop
from fleetops.sim.scheduler import SimScheduler, from_trace
from fleetops.sim.workload import Workload

log = logging.getLogger(__name__)
DEMO_PASSWORDS = {role: f"{role.value}-demo-pass" for role in Role}
MANAGEMENT_HOST = "netops-01"
# Real fsimages beside a checkout (the shared data); the demo analyses those under 1 MB, so it
# starts in seconds (`bench/storage.py` times the large one).
SHARED_FSIMAGES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "fsimage"
SMALL_IMAGE = 1 << 20
# The shared Alibaba 2018 sample: the demo keeps a resource report of it, and its simulated YARN
# scheduler holds a queue per task type. The trace normalises memory (100 = a machine); the demo
# takes its machines to have 96 GB.
SHARED_TRACES = SHARED_FSIMAGES.parent / "traces" / "alibaba2018"
DEMO_GB_PER_MEMORY_UNIT = 0.96
SLOW_LINK_AFTER = 120  # seconds: when the demo congests a rack's uplink, for the live screen
SLOW_LINK_FOR = timedelta(minutes=30)


def demo_executors(*, hosts: int, racks: int) -> dict[str, SimulatedExecutor]:
    """The simulated fleet answers every command: a little latency, rare failures, and one
    machine whose disk is slow without logging an error (for inspection to find)."""
    executor = SimulatedExecutor(
        seed=7, latency=0.4, failure_rate=0.002, degraded=[slow_disk_host(hosts, racks)]
    )
    executor.scheduler = demo_scheduler()
    return {"simulated": executor}


def demo_scheduler() -> SimScheduler:
    """The YARN scheduler the demo's resource recommendations go to: a queue per task type of
    the shared sample (root.batch.M, ...), each allowing its largest request; empty without it."""
    if not SHARED_TRACES.is_dir():
        return SimScheduler()
    return from_trace(SHARED_TRACES, Site(), gb_per_memory_unit=DEMO_GB_PER_MEMORY_UNIT)


def slow_disk_host(hosts: int, racks: int) -> str:
    """The demo machine with a worn-out disk: the third host of the first rack."""
    fleet = generate(hosts=hosts, racks=racks)
    return sorted(h.hostname for h in fleet.hosts if h.rack == "r001")[2]


def demo_inventory(*, hosts: int, racks: int) -> InventoryDoc:
    """The generated fleet, plus the network management host its link switches run on: the
    demo's switches answer `fleetops-sim-link` there (label network_cli=sim)."""
    doc = generate(hosts=hosts, racks=racks)
    doc.hosts.append(
        HostDoc(
            hostname=MANAGEMENT_HOST,
            address="10.255.255.10",
            labels={"network_cli": "sim", "role": "netops"},
            groups=["netops"],
        )
    )
    return doc


def build_demo(settings: Settings, *, hosts: int, racks: int) -> tuple[dict[str, str], str]:
    """Create and fill the demo database; return username → password, and the simulator's
    ingest token."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    ctx = AuditContext(actor="system:demo")
    library = load_library()
    with session_scope(make_session_factory(engine)) as session:
        for role, password in DEMO_PASSWORDS.items():
            auth_service.create_user(
                session, ctx, username=role.value, role=role, password=password
            )
        apply_document(session, ctx, demo_inventory(hosts=hosts, racks=racks))
        _changes(session, library, racks=racks)
        _inspections(session, library, hosts=hosts, racks=racks)
        _, token = logs_service.create_ingest_token(session, ctx, name="simulator")
        business.backfill(session, now=datetime.now(UTC))
        storage_reports(session, ctx, settings.data_dir)
        collect_facts(
            session,
            AuditContext(actor="operator"),
            selector="all",
            reason="Inode provisioning of the whole fleet, for /analytics/storage.",
            library=library,
            policy=ApprovalPolicy(),
        )
    engine.dispose()
    return {role.value: pw for role, pw in DEMO_PASSWORDS.items()}, token


def repair_shop(
    settings: Settings, executor: SimulatedExecutor, workload: Workload, *, port: int
) -> RepairShop:
    """The demo's repair shop, an operator account working the repair queue over the API; what
    it repairs is healthy again in the simulated fleet (its faults end, its hardware checks pass),
    unless the repair did not help."""
    engine = make_engine(settings.database_url)
    ctx = AuditContext(actor="system:demo")
    with session_scope(make_session_factory(engine)) as session:
        password = secrets.token_urlsafe(24)  # never shown: the shop signs in with its token
        user = auth_service.create_user(
            session, ctx, username="repair-shop", role=Role.OPERATOR, password=password
        )
        _, token = auth_service.create_token(session, ctx, user=user, name="repair shop")
    engine.dispose()

    def outcome(host: str, fixed: bool) -> None:
        if fixed:
            executor.hardware_faults.discard(host)
            workload.repair(host)
        else:
            executor.hardware_faults.add(host)

    return RepairShop(f"http://127.0.0.1:{port}", token, on_outcome=outcome)


def shop_feed(feed: LiveFeed, *, port: int, token: str) -> ShopFeed:
    """The shop's transactions per second (with a shopping peak three minutes in, then every
    half hour), and the log lines shipped and jobs and tasks finished per second, pushed to the
    metrics API."""
    return ShopFeed(
        f"http://127.0.0.1:{port}/api/v1/metrics",
        token,
        lines_sent=lambda: feed.sent,
        finished=lambda: feed.workload.finished,
    )


def demo_feed(
    *, hosts: int, racks: int, port: int, token: str, slow_link_after: float = SLOW_LINK_AFTER
) -> LiveFeed:
    """The simulated fleet's jobs and logs, shipped to the demo server in real time, with a new
    fault every few minutes (slow disk, flapping NIC, congested uplink, bad ToR, bad DIMM, full
    disk) for the detectors to find."""
    fleet = generate(hosts=hosts, racks=racks)
    start = datetime.now(UTC)
    faults = demo_faults(fleet, start, slow_link_after=slow_link_after)
    workload = Workload(fleet, seed=7, start=start, faults=faults)
    return LiveFeed(workload, f"http://127.0.0.1:{port}/api/v1/logs", token)


def slow_link(fleet: InventoryDoc, others: list[Fault], onset: datetime) -> Fault:
    """A congested uplink for half an hour, on the rack fewest other faults touch meanwhile: its
    links turn hot on the live screen, where "switch link" drains it (`Workload.switch_link`)."""
    end = onset + SLOW_LINK_FOR
    rack_of = {h.hostname: h.rack for h in fleet.hosts}
    tor_rack = {tor: rack for rack, tor in tor_of(fleet).items()}
    busy = Counter(
        rack_of.get(f.target) or tor_rack.get(f.target.removesuffix(UPLINK))
        for f in others
        if f.onset < end and (f.end is None or f.end > onset)
    )
    target = min(
        targets(fleet, "congested_link"), key=lambda t: busy[tor_rack[t.removesuffix(UPLINK)]]
    )
    return Fault("congested_link", target, onset, end, 1.0)


def demo_faults(fleet: InventoryDoc, start: datetime, *, slow_link_after: float) -> list[Fault]:
    """What goes wrong in the demo: a fault every few minutes for the detectors, a failing DIMM
    a minute in (for the repair loop) and the congested uplink (for the live screen)."""
    faults = schedule_faults(
        fleet, count=20, seed=7, start=start + timedelta(seconds=90), duration=timedelta(hours=1)
    )
    # A failing DIMM a minute in, so the repair loop (isolation, ticket, repair, verification)
    # shows on /devices within minutes: its machine-check lines make the policy isolate the host.
    used = {f.target for f in faults}
    dimm = next(t for t in reversed(targets(fleet, "bad_dimm")) if t not in used)
    faults.insert(
        0,
        Fault("bad_dimm", dimm, start + timedelta(seconds=60), start + timedelta(minutes=20), 1.0),
    )
    faults.append(slow_link(fleet, faults, start + timedelta(seconds=slow_link_after)))
    return faults


def storage_reports(session: Session, ctx: AuditContext, work: Path) -> list[int]:
    """Storage analysis on /analytics/storage: the simulated cluster's namespace (recycle bins
    kept too long, small files, cold partitions), and each small real fsimage of the shared
    data beside the repository when it is there; the ids of the reports kept."""
    now = datetime.now(UTC)
    options = Options(now=now)
    kept = []
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        entries = Path(tmp) / "namespace.parquet"
        with EntryWriter(entries) as writer:
            writer.extend(namespace(now))
        report = analyze(entries, options, name="demo cluster (simulated fsimage)")
        kept.append(save_report(session, ctx, report).id)
        images = sorted(SHARED_FSIMAGES.glob("fs*")) if SHARED_FSIMAGES.is_dir() else []
        for image in (i for i in images if i.stat().st_size < SMALL_IMAGE):
            read_input(image, Path(tmp) / f"{image.name}.parquet")
            report = analyze(Path(tmp) / f"{image.name}.parquet", options, name=image.name)
            kept.append(save_report(session, ctx, report).id)
    return kept


def analyses_later(settings: Settings) -> Callable[[], Coroutine[Any, Any, None]]:
    """The demo's analyses of the shared data, made once the server is up, one after the other
    (the recommenders take about 15 s, the disk predictor as long), which the first page should
    not wait for: the resource report, then the disk predictions the remediation rules act on."""

    async def build() -> None:
        for name, make in (("resource report", _resource_report_now), ("predictions", predict)):
            try:
                await asyncio.to_thread(make, settings)
            except Exception:
                log.exception("demo: the %s could not be made", name)

    return build


def _resource_report_now(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            resource_report(
                session, AuditContext(actor="system:demo"), Site.of(settings), load_library()
            )
    finally:
        engine.dispose()


def resource_report(
    session: Session, ctx: AuditContext, site: Site, library: OperationLibrary
) -> int | None:
    """Right-sizing on /analytics/resources: the report of the shared sample (every task-type
    group, fleetops' recommender), and the read-only change that collects the scheduler's
    quotas; the report's id (None without the shared data)."""
    if not SHARED_TRACES.is_dir():
        return None
    report = resources.save_report(session, ctx, compute(SHARED_TRACES), site=site)
    resources.collect_quotas(
        session,
        AuditContext(actor="operator"),
        site=site,
        library=library,
        policy=ApprovalPolicy(),
        reason="The scheduler's queues, beside the resource report on /analytics/resources.",
    )
    return report.id


def _changes(session: Session, library: OperationLibrary, *, racks: int) -> None:
    developer = AuditContext(actor="developer")
    for name in standard.shipped():
        changes.pinned_workflow(session, name, library=library)
    policy = ApprovalPolicy()
    last = min(racks, 4)
    rolling = changes.submit(
        session,
        developer,
        changes.Submission(
            workflow="rolling-restart",
            title="Restart the YARN NodeManagers of the first racks",
            selector=f"cluster=hadoop-prod,rack=r[001-{last:03d}]",
            params={"service": "hadoop-yarn-nodemanager"},
            reason="Pick up the new container memory limits (yarn-site.xml v42).",
        ),
        library=library,
        policy=policy,
    )
    for approver in ("operator", "admin")[: rolling.approvals_required]:
        changes.vote(
            session,
            AuditContext(actor=approver),
            rolling,
            role=Role.OPERATOR,
            approve=True,
            comment="reviewed the config diff",
        )
    changes.submit(
        session,
        developer,
        changes.Submission(
            workflow="os-patch",
            title="Monthly OS patching of the streaming workers",
            selector="cluster=k8s-stream,label:os=debian-12",
            params={},
            reason="Security updates (openssl, kernel).",
        ),
        library=library,
        policy=policy,
    )


def _inspections(session: Session, library: OperationLibrary, *, hosts: int, racks: int) -> None:
    """Inspection at work: eight machines of each model are measured first (record only), which
    builds the models' baselines; a minute later the first rack is inspected against them, and
    its machine with the worn-out disk fails (on /inspection)."""
    fleet = generate(hosts=hosts, racks=racks)
    slow = slow_disk_host(hosts, racks)
    by_model: dict[str, list[str]] = {}
    for host in sorted(fleet.hosts, key=lambda h: h.hostname):
        if host.model and host.hostname != slow:
            by_model.setdefault(host.model, []).append(host.hostname)
    sample = [name for names in by_model.values() for name in names[:8]]
    operator = AuditContext(actor="operator")
    inspection.submit(
        session,
        operator,
        inspection.InspectionRequest(
            selector="host=" + "|".join(sample),
            quick=True,
            record_only=True,
            reason="Baselines: eight healthy machines of each hardware model.",
        ),
        library=library,
        policy=ApprovalPolicy(),
    )
    rack = inspection.submit(
        session,
        operator,
        inspection.InspectionRequest(
            selector="rack=r001",
            quick=True,
            reason="Inspect rack r001 after its disk firmware update.",
        ),
        library=library,
        policy=ApprovalPolicy(),
    )
    rack.window_start = datetime.now(UTC) + timedelta(seconds=60)  # once the baselines exist
