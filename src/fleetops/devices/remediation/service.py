"""Remediation: open findings to changes, within each rule's budget, recorded either way.

`propose` only reads: for each rule not disabled, the open host findings it covers that it has not
acted on, each with the change it calls for and, if a limit holds it, which one. `run_pass` records
a dry-run rule's proposals and submits an enabled rule's changes: a drain is the device lifecycle's
isolation (pre-approved only within the device safety limits, as the health policy's); a restart
(rolling-restart) and giving a filling data disk its root reserve (release-reserved-blocks) are
shipped workflows that wait for approval like any change of their risk. `follow` writes each
action's outcome once its change has ended and the rule's verification window is over.

A dry-run rule spends its budget as if its proposals had run, so its record shows what the rule
would really have done, held proposals included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.changes import service as changes
from fleetops.changes.enums import ChangeState
from fleetops.devices.enums import Lifecycle, Outcome, Remedy, RemedyStatus, RuleMode
from fleetops.devices.lifecycle.service import LifecycleConfig, isolate
from fleetops.devices.policy.safety import Caps, OutOfService
from fleetops.devices.remediation.rules import Remediation, RemediationRule
from fleetops.devices.states import POLICY_PREFIX, current
from fleetops.errors import AppError, NotFound
from fleetops.findings import repository as finding_queries
from fleetops.findings.enums import Severity
from fleetops.models import (
    ChangeRequest,
    Finding,
    Host,
    RemediationAction,
    RemediationMode,
    utcnow,
)

RESTART_WORKFLOW = "rolling-restart"
RESERVE_WORKFLOW = "release-reserved-blocks"
# A mount the ext4_reserve operation accepts (the finding's, from the fill forecast).
MOUNT = re.compile(r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$")
# Draining only makes sense for a host that still serves.
_SERVING = (Lifecycle.IN_SERVICE, Lifecycle.SUSPECT)
# Rows a rule does not redo: a held one is tried again on the next pass.
_DONE = (RemedyStatus.PROPOSED.value, RemedyStatus.SUBMITTED.value, RemedyStatus.REFUSED.value)


class RuleNotFound(NotFound):
    pass


@dataclass(frozen=True)
class Proposal:
    """What one rule would do about one finding now; `held` names the limit that stops it."""

    rule: str
    mode: RuleMode
    finding_id: int
    host: str
    action: Remedy
    plan: dict[str, Any]
    reason: str
    held: str = ""


# --- modes -------------------------------------------------------------------------------------


def modes(session: Session, remediation: Remediation) -> dict[str, RuleMode]:
    """Each rule's mode: the one an admin set, else its file's."""
    stored = dict(session.execute(select(RemediationMode.rule, RemediationMode.mode)).all())
    return {r.name: RuleMode(stored.get(r.name, r.mode.value)) for r in remediation.rules}


def set_mode(
    session: Session, ctx: AuditContext, remediation: Remediation, name: str, mode: RuleMode
) -> RuleMode:
    """Set a rule's mode (audited); the previous one is in the audit record."""
    if remediation.get(name) is None:
        raise RuleNotFound(f"remediation rule {name!r} not found (`fleetops policy list`)")
    before = modes(session, remediation)[name]
    row = session.get(RemediationMode, name)
    if row is None:
        row = RemediationMode(rule=name, mode=mode.value, updated_by=ctx.actor)
        session.add(row)
    row.mode, row.updated_by, row.updated_at = mode.value, ctx.actor, utcnow()
    session.flush()
    audit.record(
        session,
        ctx,
        action="remediation.mode",
        entity_type="remediation_rule",
        entity_id=name,
        before={"mode": before.value},
        after={"mode": mode.value},
    )
    return mode


# --- propose -----------------------------------------------------------------------------------


@dataclass
class _Budget:
    """What a rule has spent: actions in the last hour, and the hosts it is working on."""

    rule: RemediationRule
    used: int
    busy: set[str] = field(default_factory=set)

    @classmethod
    def load(
        cls, session: Session, rule: RemediationRule, mode: RuleMode, now: datetime
    ) -> _Budget:
        mine = (RemediationAction.rule == rule.name, RemediationAction.mode == mode.value)
        acted = RemediationAction.status.in_([RemedyStatus.PROPOSED, RemedyStatus.SUBMITTED])
        used = session.scalar(
            select(func.count()).where(
                *mine, acted, RemediationAction.at >= now - timedelta(hours=1)
            )
        )
        working = or_(
            and_(
                RemediationAction.status == RemedyStatus.SUBMITTED.value,
                RemediationAction.outcome == Outcome.PENDING.value,
            ),
            and_(
                RemediationAction.status == RemedyStatus.PROPOSED.value,
                RemediationAction.at >= now - rule.verify,
            ),
        )
        busy = set(session.scalars(select(RemediationAction.entity).where(*mine, working)))
        return cls(rule, used or 0, busy)

    def refuse(self) -> str:
        if self.used >= self.rule.per_hour:
            return f"budget: {self.rule.per_hour} action(s) an hour"
        if len(self.busy) >= self.rule.hosts_out:
            return f"budget: {self.rule.hosts_out} host(s) out at once"
        return ""

    def admit(self, host: str) -> None:
        self.used += 1
        self.busy.add(host)


def propose(
    session: Session,
    remediation: Remediation,
    *,
    now: datetime,
    caps: Caps | None = None,
    only: str | None = None,
    isolation_workflow: str = "isolate-host",
) -> list[Proposal]:
    """What every rule not disabled (or the rule `only`, whatever its mode, as a dry run if
    disabled) would do now, in rule order."""
    if only is not None and remediation.get(only) is None:
        raise RuleNotFound(f"remediation rule {only!r} not found (`fleetops policy list`)")
    found = finding_queries.open_about_hosts(session)
    hosts = _hosts(session, {f.entity for f in found})
    out = OutOfService.load(session, caps or Caps(), since=now - timedelta(hours=1))
    mode_of = modes(session, remediation)
    claimed: set[int] = set()  # a finding is the first covering rule's
    proposals: list[Proposal] = []
    for rule in remediation.rules:
        mode = mode_of[rule.name]
        if rule.name == only and mode is RuleMode.DISABLED:
            mode = RuleMode.DRY_RUN  # tested as it would run
        if mode is RuleMode.DISABLED:
            continue  # a disabled rule leaves its findings to the next rule that covers them
        covered = [f for f in found if f.id not in claimed and rule.covers(f)]
        claimed.update(f.id for f in covered)
        if only is not None and rule.name != only:
            continue
        context = _Context(session, rule, mode, now, out, isolation_workflow)
        proposals += context.proposals(covered, hosts)
    return proposals


@dataclass
class _Context:
    session: Session
    rule: RemediationRule
    mode: RuleMode
    now: datetime
    out: OutOfService
    isolation_workflow: str

    def proposals(self, covered: list[Finding], hosts: dict[str, Host]) -> list[Proposal]:
        done = _acted_on(self.session, self.rule.name, self.mode)
        budget = _Budget.load(self.session, self.rule, self.mode, self.now)
        found: list[Proposal] = []
        for finding in sorted(covered, key=_urgency):
            host = hosts.get(finding.entity)
            if finding.id in done or host is None or host.hostname in budget.busy:
                continue
            drain = self.rule.action is Remedy.DRAIN
            if drain and current(self.session, host) not in _SERVING:
                continue  # already out of service: nothing to drain
            if self.rule.action is Remedy.RELEASE_RESERVE and not _mount(finding):
                continue  # no data filesystem named: nothing to give back
            held = budget.refuse() or (self.out.refuse(host) or "" if drain else "")
            if not held:
                budget.admit(host.hostname)
                if drain:
                    self.out.admit(host)
            found.append(self._proposal(finding, host, held))
        return found

    def _proposal(self, finding: Finding, host: Host, held: str) -> Proposal:
        rule = self.rule
        if rule.action is Remedy.DRAIN:
            plan: dict[str, Any] = {
                "workflow": self.isolation_workflow,
                "title": f"Isolate {host.hostname}",
                "selector": host.hostname,
                "params": {},
                "repair": rule.repair or "reboot",
            }
        elif rule.action is Remedy.RESTART_SERVICE:
            plan = {
                "workflow": RESTART_WORKFLOW,
                "title": f"Restart {rule.service} on {host.hostname}",
                "selector": host.hostname,
                "params": {"service": rule.service},
            }
        else:
            mount = _mount(finding)
            plan = {
                "workflow": RESERVE_WORKFLOW,
                "title": f"Give back the root reserve of {mount} on {host.hostname}",
                "selector": host.hostname,
                "params": {"mounts": mount, "percent": rule.percent},
            }
        return Proposal(
            rule=rule.name,
            mode=self.mode,
            finding_id=finding.id,
            host=host.hostname,
            action=rule.action,
            plan=plan,
            reason=f"remediation rule {rule.name}: {finding.title}"[:2000],
            held=held,
        )


def _mount(finding: Finding) -> str:
    mount = finding.details.get("mount") if isinstance(finding.details, dict) else None
    return mount if isinstance(mount, str) and MOUNT.match(mount) else ""


def _urgency(finding: Finding) -> tuple[int, float, int]:
    return (-Severity(finding.severity).rank, -finding.score, finding.id)


def _hosts(session: Session, names: set[str]) -> dict[str, Host]:
    return {h.hostname: h for h in session.scalars(select(Host).where(Host.hostname.in_(names)))}


def _acted_on(session: Session, rule: str, mode: RuleMode) -> set[int]:
    rows = session.scalars(
        select(RemediationAction.finding_id).where(
            RemediationAction.rule == rule,
            RemediationAction.mode == mode.value,
            RemediationAction.status.in_(_DONE),
            RemediationAction.finding_id.is_not(None),
        )
    )
    return {i for i in rows if i is not None}


# --- act ---------------------------------------------------------------------------------------


def run_pass(
    session: Session,
    remediation: Remediation,
    *,
    now: datetime,
    lifecycle: LifecycleConfig,
    caps: Caps | None = None,
) -> list[RemediationAction]:
    """Record every proposal (dry run) or act on it (enabled); the rows written; flush only."""
    written: list[RemediationAction] = []
    for proposal in propose(
        session,
        remediation,
        now=now,
        caps=caps,
        isolation_workflow=lifecycle.isolation_workflow,
    ):
        rule = remediation.get(proposal.rule)
        assert rule is not None
        written.append(_record(session, rule, proposal, lifecycle=lifecycle, now=now))
    return written


def _record(
    session: Session,
    rule: RemediationRule,
    proposal: Proposal,
    *,
    lifecycle: LifecycleConfig,
    now: datetime,
) -> RemediationAction:
    row = session.scalar(
        select(RemediationAction).where(
            RemediationAction.rule == rule.name,
            RemediationAction.mode == proposal.mode.value,
            RemediationAction.finding_id == proposal.finding_id,
        )
    )
    if row is None:
        row = RemediationAction(
            rule=rule.name,
            mode=proposal.mode.value,
            finding_id=proposal.finding_id,
            entity=proposal.host,
            action=proposal.action.value,
            plan=proposal.plan,
            status=RemedyStatus.HELD.value,  # until decided below
        )
        session.add(row)
    if row.at is None or not proposal.held:  # a hold keeps the moment it began
        row.at = now
    row.reason = proposal.reason
    ctx = AuditContext(actor=f"{POLICY_PREFIX}remediation:{rule.name}", source="policy")
    if proposal.held:
        row.status, row.reason = RemedyStatus.HELD.value, f"{proposal.reason} [{proposal.held}]"
    elif proposal.mode is RuleMode.DRY_RUN:
        row.status = RemedyStatus.PROPOSED.value
    else:
        try:
            with session.begin_nested():
                change = _act(session, ctx, rule, proposal, lifecycle=lifecycle, now=now)
        except AppError as exc:
            row.status, row.reason = RemedyStatus.REFUSED.value, f"{proposal.reason} [{exc.detail}]"
        else:
            row.status, row.change_id = RemedyStatus.SUBMITTED.value, change.id
            row.outcome = Outcome.PENDING.value
    session.flush()
    if row.status != RemedyStatus.HELD.value:
        _audit(session, ctx, row, proposal)
    return row


def _audit(session: Session, ctx: AuditContext, row: RemediationAction, proposal: Proposal) -> None:
    audit.record(
        session,
        ctx,
        action="remediation.act",
        entity_type="host",
        entity_id=proposal.host,
        after={
            "rule": row.rule,
            "mode": proposal.mode.value,
            "status": row.status,
            "finding": proposal.finding_id,
            "change": row.change_id,
            "plan": proposal.plan,
        },
    )


def _act(
    session: Session,
    ctx: AuditContext,
    rule: RemediationRule,
    proposal: Proposal,
    *,
    lifecycle: LifecycleConfig,
    now: datetime,
) -> ChangeRequest:
    [host] = _hosts(session, {proposal.host}).values()
    if rule.action is Remedy.DRAIN:
        return isolate(
            session,
            host,
            ctx=ctx,
            reason=proposal.reason,
            evidence=[proposal.finding_id],
            config=lifecycle,
            repair=rule.repair,
            now=now,
        )
    plan = proposal.plan
    workflow, pin = changes.pinned_workflow(session, plan["workflow"], library=lifecycle.library)
    return changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=workflow.name,
            title=plan["title"],
            selector=plan["selector"],
            params=plan["params"],
            reason=proposal.reason,
        ),
        library=lifecycle.library,
        policy=lifecycle.approvals,
        pin=pin,
    )


# --- outcomes ----------------------------------------------------------------------------------


def follow(session: Session, remediation: Remediation, *, now: datetime) -> int:
    """Write the outcome of each pending action whose change ended (and, if it succeeded, whose
    verification window is over or whose finding came back); how many were written."""
    pending = session.scalars(
        select(RemediationAction).where(RemediationAction.outcome == Outcome.PENDING.value)
    ).all()
    written = 0
    for row in pending:
        outcome = _outcome(session, remediation.get(row.rule), row, now)
        if outcome is not None:
            row.outcome, row.outcome_at = outcome.value, now
            written += 1
    session.flush()
    return written


def _outcome(
    session: Session, rule: RemediationRule | None, row: RemediationAction, now: datetime
) -> Outcome | None:
    change = changes.get_change(session, row.change_id) if row.change_id is not None else None
    if change is None:
        return Outcome.FAILED  # the change is gone
    state = ChangeState(change.state)
    if not state.terminal:
        return None
    if state is not ChangeState.SUCCEEDED:
        return Outcome.FAILED
    ended = change.finished_at or now
    again = finding_queries.seen_about_host_since(
        session,
        row.entity,
        since=ended,
        kind=rule.kind if rule is not None else None,
        signature=rule.signature if rule is not None else None,
        finding_id=row.finding_id if rule is None or rule.signature is None else None,
    )
    if again:
        return Outcome.NOT_FIXED
    window = rule.verify if rule is not None else timedelta(hours=1)
    return Outcome.FIXED if now >= ended + window else None


# --- reading -----------------------------------------------------------------------------------


def counts(session: Session) -> dict[str, dict[str, int]]:
    """Per rule: its actions by mode and status, and by outcome."""
    found: dict[str, dict[str, int]] = {}
    for rule, mode, status, outcome, n in session.execute(
        select(
            RemediationAction.rule,
            RemediationAction.mode,
            RemediationAction.status,
            RemediationAction.outcome,
            func.count(),
        ).group_by(
            RemediationAction.rule,
            RemediationAction.mode,
            RemediationAction.status,
            RemediationAction.outcome,
        )
    ):
        mine = found.setdefault(rule, {})
        key = f"{mode}:{status}"
        mine[key] = mine.get(key, 0) + n
        if outcome is not None:
            mine[outcome] = mine.get(outcome, 0) + n
    return found


def actions_query(*, rule: str | None = None, mode: RuleMode | None = None) -> Select[Any]:
    """The actions of one rule and mode if given: newest first, those held by a limit last (a
    long queue of holds would hide what the rules did)."""
    query = select(RemediationAction)
    if rule is not None:
        query = query.where(RemediationAction.rule == rule)
    if mode is not None:
        query = query.where(RemediationAction.mode == mode.value)
    held = case((RemediationAction.status == RemedyStatus.HELD.value, 1), else_=0)
    return query.order_by(held, RemediationAction.at.desc(), RemediationAction.id.desc())
