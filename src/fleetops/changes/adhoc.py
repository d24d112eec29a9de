"""Ad-hoc commands (`fleetops exec`): recorded as auto-approved changes and audited.

The command runs from the caller's side (like `ansible all -a`), on hosts from the inventory or
from an inventory file; fleetops records who ran what where, and every host's result. Those
results are what the caller's client says happened: the server did not run or see the command,
so they are stored as client-reported (phase `reported`, and the change's status says by whom).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.changes.approvals import Risk
from fleetops.changes.enums import ChangeState, HostRunState, StepRunState
from fleetops.changes.exceptions import EmptyTargetSet, InvalidChange
from fleetops.changes.states import transition
from fleetops.errors import Conflict
from fleetops.models import ChangeRequest, Host, HostRun, StepRun, utcnow

S = ChangeState
MAX_OUTPUT = 16 * 1024  # per stream per host kept in the record


@dataclass(frozen=True)
class AdhocTarget:
    hostname: str
    host_id: int | None  # None: from an inventory file, not the inventory


@dataclass(frozen=True)
class AdhocResult:
    hostname: str
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.error


def start(
    session: Session,
    ctx: AuditContext,
    *,
    command: str,
    targets: Sequence[AdhocTarget],
    source: str,
    risk: Risk,
) -> ChangeRequest:
    """Record an ad-hoc run about to start (auto-approved, running)."""
    if not targets:
        raise EmptyTargetSet("no host to run on; an ad-hoc command needs targets")
    if len({t.hostname for t in targets}) != len(targets):
        raise InvalidChange("a host is listed twice")
    change = ChangeRequest(
        title=f"exec: {command[:180]}",
        reason=command,
        workflow_id=None,
        params={},
        params_redacted={},
        selector=source[:4096],
        host_count=len(targets),
        risk=risk.value,
        approvals_required=0,
        state=S.DRAFT.value,
        requester=ctx.actor,
        kind="adhoc",
    )
    session.add(change)
    session.flush()
    _add_host_runs(session, change, targets)
    audit.record(
        session,
        ctx,
        action="change.exec",
        entity_type="change",
        entity_id=change.id,
        after={
            "command": command,
            "hosts": len(targets),
            "risk": risk.value,
            "targets": source[:500],
        },
    )
    transition(
        session,
        change,
        S.APPROVED,
        ctx=AuditContext("policy", ctx.request_id),
        reason=f"ad-hoc {risk.value} command: approved by policy",
    )
    transition(session, change, S.RUNNING, ctx=ctx, reason="running")
    return change


def _add_host_runs(session: Session, change: ChangeRequest, targets: Sequence[AdhocTarget]) -> None:
    """One running host run per target: an ad-hoc command is a single stage, a single batch."""
    session.add_all(
        HostRun(
            change_id=change.id,
            stage_index=0,
            batch_index=0,
            host_id=t.host_id,
            hostname=t.hostname,
            state=HostRunState.RUNNING,
            started_at=utcnow(),
        )
        for t in targets
    )


def finish(
    session: Session, ctx: AuditContext, change: ChangeRequest, results: Sequence[AdhocResult]
) -> ChangeRequest:
    """Store every host's result and close the change (failed if any host failed)."""
    if change.kind != "adhoc" or change.state != S.RUNNING:
        raise Conflict(f"change {change.id} is not a running ad-hoc command")
    if change.requester != ctx.actor:
        raise Conflict("only whoever started an ad-hoc command reports its results")
    runs = {
        r.hostname: r
        for r in session.scalars(select(HostRun).where(HostRun.change_id == change.id))
    }
    if unknown := sorted({r.hostname for r in results} - set(runs)):
        raise Conflict(f"results for hosts that were not targeted: {', '.join(unknown[:5])}")
    now = utcnow()
    for result in results:
        run = runs[result.hostname]
        ok = HostRunState.SUCCEEDED if result.ok else HostRunState.FAILED
        run.state = ok
        run.error = result.error[:2000] or ("" if result.ok else f"exit {result.exit_code}")
        run.finished_at = now
        run.step_index = 1
        session.add(
            StepRun(
                host_run_id=run.id,
                step_index=0,
                operation="exec",
                phase="reported",  # by the caller's client: the server did not see it run
                state=StepRunState.SUCCEEDED if result.ok else StepRunState.FAILED,
                exit_code=result.exit_code,
                stdout=result.stdout[-MAX_OUTPUT:],
                stderr=result.stderr[-MAX_OUTPUT:],
                error=result.error[:2000],
                started_at=run.started_at or now,
                finished_at=now,
            )
        )
    for run in runs.values():
        if run.state == HostRunState.RUNNING:
            run.state, run.error = HostRunState.FAILED, "no result reported"
    session.flush()
    counts = Counter(r.state for r in runs.values())
    failed = counts.get(HostRunState.FAILED, 0)
    transition(
        session,
        change,
        S.FAILED if failed else S.SUCCEEDED,
        ctx=ctx,
        reason=f"{counts.get('succeeded', 0)} ok, {failed} failed "
        f"(as reported by {ctx.actor}'s client)",
    )
    return change


def resolve_known(session: Session, hostnames: Sequence[str]) -> dict[str, int]:
    """Inventory ids of the hosts that the inventory knows."""
    known: dict[str, int] = {}
    for start in range(0, len(hostnames), 500):  # bounded IN lists on every database
        chunk = hostnames[start : start + 500]
        rows = session.execute(select(Host.hostname, Host.id).where(Host.hostname.in_(chunk)))
        known.update((hostname, host_id) for hostname, host_id in rows)
    return known
