"""Read queries on changes: the API, the pages and other domains share them (the change tables
are this domain's alone)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from fleetops.changes.enums import ChangeState, HostRunState
from fleetops.changes.schemas import ChangeRead
from fleetops.models import Approval, ChangeRequest, HostRun, StepRun, Workflow


def by_ids(session: Session, ids: Collection[int]) -> dict[int, ChangeRequest]:
    """The changes with these ids, by id (missing ones left out)."""
    if not ids:
        return {}
    rows = session.scalars(select(ChangeRequest).where(ChangeRequest.id.in_(list(ids))))
    return {c.id: c for c in rows}


def list_query(*, state: str = "", requester: str = "") -> Select[ChangeRequest]:
    """Change requests, newest first, filtered as the API and the list page filter them."""
    stmt = select(ChangeRequest).order_by(ChangeRequest.id.desc())
    if state:
        stmt = stmt.where(ChangeRequest.state == state)
    if requester:
        stmt = stmt.where(ChangeRequest.requester == requester)
    return stmt


def change_reads(session: Session, changes: Sequence[ChangeRequest]) -> list[ChangeRead]:
    """The API's view of each change, in three queries however many there are (workflows,
    host-run counts by state, approving votes), not three per change."""
    ids = [c.id for c in changes]
    workflow_ids = {c.workflow_id for c in changes if c.workflow_id}
    workflows = (
        {w.id: w for w in session.scalars(select(Workflow).where(Workflow.id.in_(workflow_ids)))}
        if workflow_ids
        else {}
    )
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    approvals: Counter[int] = Counter()
    if ids:
        for change_id, state, n in session.execute(
            select(HostRun.change_id, HostRun.state, func.count())
            .where(HostRun.change_id.in_(ids))
            .group_by(HostRun.change_id, HostRun.state)
        ):
            counts[change_id][state] = n
        for change_id, n in session.execute(
            select(Approval.change_id, func.count())
            .where(Approval.change_id.in_(ids), Approval.decision == "approve")
            .group_by(Approval.change_id)
        ):
            approvals[change_id] = n
    return [
        _read(c, workflows.get(c.workflow_id or 0), counts[c.id], approvals[c.id]) for c in changes
    ]


def change_read(session: Session, change: ChangeRequest) -> ChangeRead:
    """The API's view of one change."""
    return change_reads(session, [change])[0]


def _read(
    change: ChangeRequest, workflow: Workflow | None, counts: Counter[str], approvals: int
) -> ChangeRead:
    return ChangeRead(
        id=change.id,
        title=change.title,
        reason=change.reason,
        workflow=workflow.name if workflow else None,
        workflow_version=workflow.version if workflow else None,
        selector=change.selector,
        params=change.params_redacted,
        host_count=change.host_count,
        risk=change.risk,
        approvals_required=change.approvals_required,
        approvals=approvals,
        state=change.state,
        status=change.status_reason,
        requester=change.requester,
        kind=change.kind,
        emergency=change.emergency,
        window_start=change.window_start,
        window_end=change.window_end,
        stage_index=change.stage_index,
        created_at=change.created_at,
        started_at=change.started_at,
        finished_at=change.finished_at,
        hosts_by_state=dict(sorted(counts.items())),
    )


LIVE_STATES = (ChangeState.RUNNING, ChangeState.PAUSED, ChangeState.ABORTING, ChangeState.SCHEDULED)
_DONE = (HostRunState.SUCCEEDED, HostRunState.ROLLED_BACK, HostRunState.CANCELLED)
_BAD = (HostRunState.FAILED, HostRunState.ROLLBACK_FAILED)


def live_changes(session: Session, *, limit: int = 20) -> dict[str, Any]:
    """What the live screen shows of changes: those awaiting approval (the newest `limit`, with
    the votes they have and need, and how many wait in all) and those under way with their
    hosts' progress."""
    waiting = ChangeRequest.state == ChangeState.PENDING_APPROVAL
    pending = session.scalars(
        select(ChangeRequest)
        .where(waiting)
        .order_by(ChangeRequest.created_at.desc(), ChangeRequest.id.desc())
        .limit(limit)
    ).all()
    running = session.scalars(
        select(ChangeRequest)
        .where(ChangeRequest.state.in_(LIVE_STATES))
        .order_by(ChangeRequest.started_at, ChangeRequest.id)
        .limit(limit)
    ).all()
    reads = {r.id: r for r in change_reads(session, [*pending, *running])}

    def head(change: ChangeRequest) -> dict[str, Any]:
        read = reads[change.id]
        return {
            "id": read.id,
            "title": read.title,
            "risk": read.risk,
            "requester": read.requester,
            "hosts": read.host_count,
        }

    def progress(change: ChangeRequest) -> dict[str, Any]:
        by_state = reads[change.id].hosts_by_state
        return {
            "state": change.state,
            "done": sum(by_state.get(s, 0) for s in _DONE),
            "failed": sum(by_state.get(s, 0) for s in _BAD),
            "total": sum(by_state.values()),
        }

    total = session.scalar(select(func.count()).select_from(ChangeRequest).where(waiting)) or 0
    return {
        "waiting": total,
        "approvals": [
            {
                **head(c),
                "votes": reads[c.id].approvals,
                "needed": c.approvals_required,
                "since": c.created_at.isoformat(),
            }
            for c in pending
        ],
        "changes": [{**head(c), **progress(c)} for c in running],
    }


class TimedChange(NamedTuple):
    """A change as a chart marks it: when it started and finished, under which workflow."""

    id: int
    title: str
    state: str
    workflow: str | None
    started_at: datetime | None
    finished_at: datetime | None


def started_or_finished(
    session: Session, *, start: datetime, end: datetime, limit: int
) -> list[TimedChange]:
    """Changes that started or finished in [start, end), the latest `limit` of them."""
    started, finished = ChangeRequest.started_at, ChangeRequest.finished_at
    rows = session.execute(
        select(
            ChangeRequest.id,
            ChangeRequest.title,
            ChangeRequest.state,
            Workflow.name,
            started,
            finished,
        )
        .outerjoin(Workflow, Workflow.id == ChangeRequest.workflow_id)
        .where(
            or_(
                and_(started >= start, started < end),
                and_(finished >= start, finished < end),
            )
        )
        .order_by(func.coalesce(finished, started).desc(), ChangeRequest.id.desc())
        .limit(limit)
    )
    return [TimedChange(*row) for row in rows]


class StepOutput(NamedTuple):
    """What one successful run of an operation printed on an inventory host."""

    step_id: int
    change_id: int
    host_id: int
    hostname: str
    finished_at: datetime | None
    stdout: str


def newest_outputs(
    session: Session, operation: str, *, known: Collection[int] = ()
) -> tuple[list[int], list[StepOutput]]:
    """The newest successful run of `operation` on each inventory host: the step ids of all of
    them, and the outputs of those not in `known` (a caller's cache of what it has read)."""
    newest = (
        select(func.max(StepRun.id))
        .join(HostRun, HostRun.id == StepRun.host_run_id)
        .where(
            StepRun.operation == operation,
            StepRun.phase == "run",
            StepRun.state == "succeeded",
            HostRun.host_id.is_not(None),
        )
        .group_by(HostRun.host_id)
    )
    ids = sorted(session.scalars(newest))
    seen = set(known)
    wanted = [i for i in ids if i not in seen]
    outputs: list[StepOutput] = []
    for chunk in (wanted[i : i + 500] for i in range(0, len(wanted), 500)):
        rows = session.execute(
            select(
                StepRun.id,
                HostRun.change_id,
                HostRun.host_id,
                HostRun.hostname,
                StepRun.finished_at,
                StepRun.stdout,
            )
            .join(HostRun, HostRun.id == StepRun.host_run_id)
            .where(StepRun.id.in_(chunk))
        )
        outputs += [
            StepOutput(step, change, host or 0, name, finished, stdout)
            for step, change, host, name, finished, stdout in rows
        ]
    return ids, outputs
