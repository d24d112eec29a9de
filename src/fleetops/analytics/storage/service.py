"""Storage reports kept on the server: saved as the CLI (or the demo) produced them, listed and
shown on /analytics/storage, and their recommendations proposed as changes. The analysis itself
runs where the data is (`analyses`)."""

from __future__ import annotations

import math
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.analytics.storage import provisioning
from fleetops.analytics.storage.exceptions import AnalysisNotFound, NothingToPropose
from fleetops.analytics.storage.schemas import Finding, Report
from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.changes import repository as change_queries
from fleetops.changes import service as changes
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.operations import OperationLibrary
from fleetops.kit.pagination import paginate
from fleetops.kit.units import binary_bytes
from fleetops.models import ChangeRequest, HardwareModel, Host, StorageReport

Proposal = Literal["expunge", "unlayer"]
EXPUNGE_WORKFLOW = "expunge-trash"
UNLAYER_WORKFLOW = "remove-layered-trash"
NOTHING = {
    "trash_retention": "no trash checkpoint older than its retention",
    "layered_trash": "no trash inside a trash",
}


def save_report(session: Session, ctx: AuditContext, report: Report) -> StorageReport:
    """Store a report (audited); its disk savings are the sum of its disk findings."""
    row = StorageReport(
        created_by=ctx.actor,
        source=report.input,
        files=report.totals.files,
        directories=report.totals.directories,
        bytes=report.totals.bytes,
        raw_bytes=report.totals.raw_bytes,
        disk_savings=sum(f.savings_bytes for f in report.findings if f.resource == "disk"),
        report=report.model_dump(mode="json"),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx,
        action="storage.report",
        entity_type="storage_report",
        entity_id=row.id,
        after={"source": row.source, "files": row.files, "disk_savings": row.disk_savings},
    )
    return row


def list_reports(session: Session, *, limit: int, offset: int) -> tuple[list[StorageReport], int]:
    """Newest first."""
    newest = select(StorageReport).order_by(
        StorageReport.created_at.desc(), StorageReport.id.desc()
    )
    return paginate(session, newest, limit=limit, offset=offset)


def get_report(session: Session, report_id: int) -> StorageReport:
    row = session.get(StorageReport, report_id)
    if row is None:
        raise AnalysisNotFound(f"storage report {report_id} not found")
    return row


def propose(
    session: Session,
    ctx: AuditContext,
    report_id: int,
    action: Proposal,
    *,
    selector: str,
    library: OperationLibrary,
    policy: ApprovalPolicy,
) -> ChangeRequest:
    """The change that frees what a report's finding found, on the HDFS client `selector`
    names; it waits for approval (high risk: deleting data) like any other change.

    `expunge`: the trash checkpoints older than the retention the report assumed
    (`trash_retention`). `unlayer`: the `.Trash` directories inside users' trash
    (`layered_trash`)."""
    kind = "trash_retention" if action == "expunge" else "layered_trash"
    report, finding = _finding(session, report_id, kind)
    saving = f"Storage report #{report_id} ({report.input}): {binary_bytes(finding.savings_bytes)}"
    if action == "expunge":
        hours = max(1, math.ceil(report.options.trash_retention_hours))
        workflow, title = EXPUNGE_WORKFLOW, f"Expunge HDFS trash checkpoints older than {hours} h"
        params: dict[str, int] = {"older_than_hours": hours}
        why = f"{saving} in checkpoints older than {hours} h. {finding.detail}."
    else:
        workflow, title = UNLAYER_WORKFLOW, "Delete the trash inside HDFS users' trash"
        params, why = {}, f"{saving} in trash deleted into the trash. {finding.detail}."
    return changes.submit(
        session,
        ctx,
        changes.Submission(workflow, title, selector, params, reason=why),
        library=library,
        policy=policy,
    )


def _finding(session: Session, report_id: int, kind: str) -> tuple[Report, Finding]:
    row = get_report(session, report_id)
    report = Report.model_validate(row.report)
    finding = next((f for f in report.findings if f.kind == kind), None)
    if finding is None:
        raise NothingToPropose(f"storage report {report_id} has {NOTHING[kind]}")
    return report, finding


def inode_view(
    session: Session, cache: provisioning.FactsCache, *, limit: int = 50
) -> provisioning.InodeView:
    """The fleet's inode provisioning from each host's newest collected filesystem facts."""
    collected, models = _collected(session, cache)
    return provisioning.build_view(collected, models, limit=limit)


def _collected(
    session: Session, cache: provisioning.FactsCache
) -> tuple[list[provisioning.Collected], dict[str, str]]:
    """Each host's newest facts (parsed once per step), and each host's hardware model."""
    ids, outputs = change_queries.newest_outputs(
        session, provisioning.OPERATION, known=cache.known()
    )
    parsed = {o.step_id: provisioning.parse(o.hostname, o.finished_at, o.stdout) for o in outputs}
    collected = cache.update(ids, parsed)
    rows = session.execute(
        select(Host.hostname, HardwareModel.name).join(
            HardwareModel, HardwareModel.id == Host.model_id
        )
    )
    return collected, dict(rows.all())


def propose_reserve(
    session: Session,
    ctx: AuditContext,
    cache: provisioning.FactsCache,
    *,
    model: str,
    percent: int,
    library: OperationLibrary,
    policy: ApprovalPolicy,
) -> ChangeRequest:
    """The change that gives back what a model's data disks reserve for root beyond `percent`
    (tune2fs -m, online), on every host of the model; it waits for review (medium risk)."""
    collected, models = _collected(session, cache)
    plan = provisioning.reserve_plan(collected, models, model, percent)
    return changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=provisioning.RESERVE_WORKFLOW,
            title=f"Reserve {percent} % for root on the {model} data disks",
            selector=f"model={model}",
            params={"mounts": ",".join(plan.mounts), "percent": percent},
            reason=f"Inode analysis: {binary_bytes(plan.saving_bytes)} reserved for root beyond "
            f"{percent} % on {plan.filesystems:,} data filesystems of {plan.hosts:,} {model} "
            "hosts, given back online (tune2fs -m); system mounts keep their reserve.",
        ),
        library=library,
        policy=policy,
    )


def collect_facts(
    session: Session,
    ctx: AuditContext,
    *,
    selector: str,
    reason: str = "",
    library: OperationLibrary,
    policy: ApprovalPolicy,
) -> ChangeRequest:
    """The read-only change that collects the filesystem facts of the hosts `selector` picks."""
    return changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=provisioning.WORKFLOW,
            title=f"Collect filesystem facts ({selector})",
            selector=selector,
            params={},
            reason=reason or "Inode provisioning and reserved blocks for /analytics/storage.",
        ),
        library=library,
        policy=policy,
    )
