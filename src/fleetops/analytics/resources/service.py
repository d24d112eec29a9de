"""Resource reports kept on the server, decided on recommendation by recommendation, and applied
to the scheduler through one change awaiting approval. The analysis itself runs where the trace
is (`advice`); only its figures travel."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.analytics.resources import scheduler
from fleetops.analytics.resources.exceptions import DecisionRefused, NothingToApply, ReportNotFound
from fleetops.analytics.resources.scheduler import Kind, Request, Site
from fleetops.analytics.resources.schemas import UNITS, QuotaRead, QuotasView, ReportIn
from fleetops.analytics.resources.states import Move, Status, refusal
from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.changes import repository as change_queries
from fleetops.changes import service as changes
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.operations import OperationLibrary
from fleetops.kit.pagination import paginate
from fleetops.models import ChangeRequest, ResourceRecommendation, ResourceReport


def save_report(
    session: Session, ctx: AuditContext, report: ReportIn, *, site: Site
) -> ResourceReport:
    """Keep a report and its recommendations, each proposed, named by the site's template."""
    row = ResourceReport(
        created_by=ctx.actor,
        source=report.source,
        key=report.key,
        method=report.method,
        figures=report.figures.model_dump(mode="json"),
    )
    session.add(row)
    session.flush()
    session.add_all(
        ResourceRecommendation(
            report_id=row.id,
            group=a.group,
            target=scheduler.target_of(site.template, site.kind, report.key, a.group),
            resource=a.resource,
            request=a.request,
            recommendation=a.recommendation,
            unit=UNITS[a.resource],
            saving=a.saving,
            risk=a.risk,
            status=Status.PROPOSED.value,
        )
        for a in report.recommendations
    )
    session.flush()
    audit.record(
        session,
        ctx,
        action="resources.report",
        entity_type="resource_report",
        entity_id=row.id,
        after={"source": row.source, "key": row.key, "method": row.method,
               "recommendations": len(report.recommendations)},
    )  # fmt: skip
    return row


def list_reports(session: Session, *, limit: int, offset: int) -> tuple[list[ResourceReport], int]:
    """Newest first."""
    newest = select(ResourceReport).order_by(
        ResourceReport.created_at.desc(), ResourceReport.id.desc()
    )
    return paginate(session, newest, limit=limit, offset=offset)


def get_report(session: Session, report_id: int) -> ResourceReport:
    row = session.get(ResourceReport, report_id)
    if row is None:
        raise ReportNotFound(f"resource report {report_id} not found")
    return row


def newest_report(session: Session) -> ResourceReport | None:
    return session.scalar(
        select(ResourceReport).order_by(ResourceReport.created_at.desc(), ResourceReport.id.desc())
    )


def recommendations(session: Session, report_id: int) -> list[ResourceRecommendation]:
    """A report's recommendations, largest saving first."""
    return list(
        session.scalars(
            select(ResourceRecommendation)
            .where(ResourceRecommendation.report_id == report_id)
            .order_by(ResourceRecommendation.saving.desc(), ResourceRecommendation.id)
        )
    )


def counts(session: Session, report_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per report, its recommendations by status."""
    found: dict[int, dict[str, int]] = {i: dict.fromkeys(Status, 0) for i in report_ids}
    rows = session.execute(
        select(ResourceRecommendation.report_id, ResourceRecommendation.status, func.count())
        .where(ResourceRecommendation.report_id.in_(report_ids))
        .group_by(ResourceRecommendation.report_id, ResourceRecommendation.status)
    )
    for report_id, status, count in rows:
        found[report_id][status] = count
    return found


def decide(
    session: Session, ctx: AuditContext, recommendation_id: int, *, accept: bool, reason: str = ""
) -> ResourceRecommendation:
    """Accept or reject one recommendation (audited); refused when its rules say no."""
    row = session.get(ResourceRecommendation, recommendation_id)
    if row is None:
        raise ReportNotFound(f"resource recommendation {recommendation_id} not found")
    to = Status.ACCEPTED if accept else Status.REJECTED
    change = changes.get_change(session, row.change_id) if row.change_id is not None else None
    why = refusal(Move(Status(row.status), to, change.state if change else None))
    if why:
        raise DecisionRefused(f"recommendation {row.id} ({row.group} {row.resource}): {why}")
    before = {"status": row.status, "change_id": row.change_id}
    row.status = to.value
    row.decided_by = ctx.actor
    row.decided_at = datetime.now(UTC)
    row.change_id = None
    session.flush()
    audit.record(
        session,
        ctx,
        action=f"resources.{'accept' if accept else 'reject'}",
        entity_type="resource_recommendation",
        entity_id=row.id,
        before=before,
        after={"status": row.status, "reason": reason},
    )
    return row


def apply(
    session: Session,
    ctx: AuditContext,
    report_id: int,
    *,
    site: Site,
    library: OperationLibrary,
    policy: ApprovalPolicy,
) -> ChangeRequest:
    """The one change that sets a report's accepted recommendations on the scheduler, from its
    client host (`resources_scheduler_client`); it always waits for an approver other than the
    requester, and its recommendations are applied with it."""
    report = get_report(session, report_id)
    kind = site.kind
    accepted = [r for r in recommendations(session, report_id) if r.status == Status.ACCEPTED]
    requests = _requests(kind, accepted, site.gb_per_memory_unit)
    row, _ = changes.pinned_workflow(session, scheduler.WORKFLOW, library=library)
    change = changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=row.name,
            version=row.version,
            title=f"Right-size {len(requests)} {kind} targets (resource report #{report_id})",
            selector=site.client,
            params={"kind": kind, "requests": scheduler.requests_param(requests)},
            reason=_reason(report, accepted),
        ),
        library=library,
        policy=replace(policy, medium=max(1, policy.medium), high=max(1, policy.high)),
    )
    if change.host_count != 1:
        raise NothingToApply(
            f"resources_scheduler_client {site.client!r} picks "
            f"{change.host_count} hosts: it must name the one scheduler client"
        )
    for rec in accepted:
        rec.status = Status.APPLIED.value
        rec.change_id = change.id
        audit.record(session, ctx, action="resources.apply",
                     entity_type="resource_recommendation", entity_id=rec.id,
                     after={"status": rec.status, "change_id": change.id})  # fmt: skip
    session.flush()
    return change


def _requests(
    kind: Kind, accepted: list[ResourceRecommendation], gb_per_unit: float | None
) -> list[Request]:
    """The accepted recommendations per target in the scheduler's units; refused whole when
    one has no valid target, or two set the same target's resource."""
    if not accepted:
        raise NothingToApply("the report has no accepted recommendation: accept some first")
    if gb_per_unit is None and any(r.resource == "mem" for r in accepted):
        raise NothingToApply(
            "memory recommendations are in a normalised unit: set resources_gb_per_memory_unit "
            "(GB of memory per unit) to apply them"
        )
    by_target: dict[str, dict[str, ResourceRecommendation]] = {}
    for rec in accepted:
        if not rec.target or not scheduler.valid_target(kind, rec.target):
            raise NothingToApply(
                f"group {rec.group!r} has no {kind} target: check resources_target_template"
            )
        other = by_target.setdefault(rec.target, {}).get(rec.resource)
        if other is not None:
            raise NothingToApply(
                f"groups {other.group!r} and {rec.group!r} both set {rec.resource} of "
                f"{rec.target}: accept one of them"
            )
        by_target[rec.target][rec.resource] = rec
    return [
        Request(
            target,
            scheduler.cpu_units(kind, recs["cpu"].recommendation) if "cpu" in recs else None,
            scheduler.memory_mb(recs["mem"].recommendation, gb_per_unit or 0.0)
            if "mem" in recs
            else None,
        )
        for target, recs in by_target.items()
    ]


def _reason(report: ResourceReport, accepted: list[ResourceRecommendation]) -> str:
    groups = ", ".join(sorted({r.group for r in accepted})[:10])
    return (
        f"Resource report #{report.id} ({report.source}, {report.method}, by {report.key}): "
        f"{len(accepted)} accepted recommendations of groups {groups}"
        f"{' and more' if len({r.group for r in accepted}) > 10 else ''}. "
        "The previous values are kept per change; a rollback restores them."
    )


def collect_quotas(
    session: Session,
    ctx: AuditContext,
    *,
    site: Site,
    library: OperationLibrary,
    policy: ApprovalPolicy,
    reason: str = "",
) -> ChangeRequest:
    """The read-only change that prints the scheduler's current quotas on its client host."""
    return changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=scheduler.QUOTAS_WORKFLOW,
            title=f"Collect the {site.kind} quotas",
            selector=site.client,
            params={"kind": site.kind},
            reason=reason or "The scheduler's current quotas, for /analytics/resources.",
        ),
        library=library,
        policy=policy,
    )


def quotas(session: Session, *, kind: Kind) -> QuotasView:
    """The scheduler's quotas in the newest successful `scheduler_quotas` output."""
    _, outputs = change_queries.newest_outputs(session, scheduler.QUOTAS_OPERATION)
    if not outputs:
        return QuotasView(kind=kind, host=None, change_id=None, collected_at=None, quotas=[])
    newest = max(outputs, key=lambda o: o.step_id)
    return QuotasView(
        kind=kind,
        host=newest.hostname,
        change_id=newest.change_id,
        collected_at=newest.finished_at,
        quotas=[
            QuotaRead(target=q.target, cpu=q.cpu, memory=q.memory)
            for q in scheduler.parse_quotas(kind, newest.stdout)
        ],
    )
