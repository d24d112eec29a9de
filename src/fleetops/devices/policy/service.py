"""Health policy: turn open host findings into suspicion and isolation, within safety limits.

Rules are data (YAML) so a site can say which signals matter on its hardware without code.
`evaluate` only reads (findings, device states, device history) and says what it would do;
`apply` does it through the one transition function and, for isolation, a change (see
`devices.lifecycle.service`). The limits exist because the well-known way automated isolation
goes wrong is a bad rule or a fleet-wide event moving many hosts at once: above the storm threshold
nothing moves and a `fleet_storm` finding asks a human to look (Cluster API's maxUnhealthy
short-circuit); while that finding is live, the policy moves nobody. Below it, isolation is further
capped per rack, per cluster and per hour (`devices.policy.safety`).

Suspicion escalates to isolation when it keeps coming back (cleared twice within 7 days) or when
the device is on probation after a repair; a suspicion the policy raised is cleared once no open
finding supports it any more. The rule file format and matching are in `devices.policy.rules`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.devices.enums import Lifecycle
from fleetops.devices.lifecycle.service import LifecycleConfig, isolate
from fleetops.devices.policy.rules import Action, Policy
from fleetops.devices.policy.safety import Caps, OutOfService
from fleetops.devices.repairs.service import RUNGS
from fleetops.devices.states import (
    POLICY_PREFIX,
    TransitionRefused,
    current,
    transition,
)
from fleetops.errors import AppError
from fleetops.findings import repository as finding_queries
from fleetops.findings import service as findings
from fleetops.findings.enums import Severity
from fleetops.findings.schemas import Observation
from fleetops.models import ChangeRequest, DeviceState, DeviceTransition, Finding, Host

STORM_KIND = "fleet_storm"
DETECTOR = "health-policy"
ESCALATE_AFTER = 2  # suspicions cleared within ESCALATE_WINDOW before the next one escalates
ESCALATE_WINDOW = timedelta(days=7)
MAX_EVIDENCE = 50
# --- evaluate ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """How far the policy may go on its own. The storm threshold is the smaller of
    `storm_fraction` of the fleet (at least one host) and `storm_hosts`, if set; `caps` bound
    isolation per rack, per cluster and per hour."""

    max_per_hour: int = 20
    storm_fraction: float = 0.05
    storm_hosts: int | None = None
    caps: Caps = field(default_factory=Caps)
    # After a verified repair, findings must be seen this long after the return to count: the
    # log detectors look back 5 minutes, so a report inside this time may still be about lines
    # from before the repair.
    settle: timedelta = timedelta(minutes=10)

    def storm_threshold(self, fleet: int) -> int:
        share = max(1, math.floor(fleet * self.storm_fraction + 1e-9))
        return share if self.storm_hosts is None else min(share, self.storm_hosts)


@dataclass(frozen=True)
class Decision:
    """What the policy says about one host, and the findings (ids) behind it."""

    hostname: str
    action: Action
    rule: str
    findings: tuple[int, ...]
    reason: str
    escalate: bool = False  # suspicion came back too often, or the device is on probation
    repair: str | None = None  # the rung the repair starts at, when the rule names one


@dataclass(frozen=True)
class Storm:
    hosts: tuple[str, ...]
    threshold: int
    fleet: int
    findings: tuple[int, ...]


@dataclass(frozen=True)
class Decisions:
    """One evaluation: who to suspect and who to isolate now, whose isolation a safety limit holds
    (they are suspected instead, with the reason), who waits (hourly cap or a live storm), whose
    suspicion cleared, who is ignored, which hosts with findings were skipped (neither in service
    nor suspect), and the storm, if any."""

    now: datetime
    suspect: list[Decision] = field(default_factory=list)
    isolate: list[Decision] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # hostname -> the limit that holds it
    deferred: list[Decision] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    ignored: list[Decision] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    storm: Storm | None = None
    halted: bool = False  # a fleet_storm finding is still live: nothing moves until it is resolved


_ACTIVE = (Lifecycle.IN_SERVICE, Lifecycle.SUSPECT)


def evaluate(session: Session, policy: Policy, *, now: datetime, limits: Limits) -> Decisions:
    """Decide, for every host with open findings, whether to suspect it, isolate it, ignore it,
    or wait; and which policy suspicions no finding supports any more."""
    by_host: dict[str, list[Finding]] = {}
    rows: dict[str, DeviceState | None] = {}
    lifecycle: dict[str, Lifecycle] = {}
    for finding, state, row in _open_host_findings(session):
        rows[finding.entity], lifecycle[finding.entity] = row, Lifecycle(state)
        if _before_return(finding, row, limits.settle):
            continue
        by_host.setdefault(finding.entity, []).append(finding)
    skipped = sorted(h for h, s in lifecycle.items() if s not in _ACTIVE and h in by_host)
    decided: list[Decision] = []
    ignored: list[Decision] = []
    for hostname in sorted(set(by_host) - set(skipped)):
        decision = _decide(policy, hostname, by_host[hostname], now)
        if decision is not None:
            (ignored if decision.action is Action.IGNORE else decided).append(decision)
    decided = [_escalated(session, d, rows[d.hostname], now) for d in decided]
    # Already suspect and only suspected again: nothing to do.
    wanted = [
        d
        for d in decided
        if d.action is Action.ISOLATE or lifecycle[d.hostname] is Lifecycle.IN_SERVICE
    ]
    supported = {h for h, found in by_host.items() if any(map(policy.supports_suspicion, found))}
    cleared = _cleared(session, supported)
    base = Decisions(now=now, ignored=ignored, skipped=skipped, cleared=cleared)
    if _storm_live(session):
        return replace(base, deferred=wanted, halted=True)
    fleet = session.scalar(select(func.count()).select_from(Host)) or 0
    threshold = limits.storm_threshold(fleet)
    if len(wanted) > threshold:
        ids = tuple(i for d in wanted for i in d.findings)
        storm = Storm(tuple(d.hostname for d in wanted), threshold, fleet, ids)
        return replace(base, deferred=wanted, storm=storm)
    return _within_limits(session, base, wanted, lifecycle, limits, now)


def _before_return(finding: Finding, row: DeviceState | None, settle: timedelta) -> bool:
    """Whether a finding may still describe the hardware from before the device's last repair."""
    returned = (
        row is not None
        and row.probation_until is not None
        and row.state == Lifecycle.IN_SERVICE.value
    )
    return returned and finding.last_seen < row.since + settle  # type: ignore[union-attr]


def _within_limits(
    session: Session,
    base: Decisions,
    wanted: list[Decision],
    lifecycle: dict[str, Lifecycle],
    limits: Limits,
    now: datetime,
) -> Decisions:
    """Isolate while the caps allow (the rest are suspected instead), suspect within the hourly
    budget; isolation first, since it is what the limits guard."""
    out = OutOfService.load(session, limits.caps, since=now - timedelta(hours=1))
    names = [d.hostname for d in wanted]
    hosts = {h.hostname: h for h in session.scalars(select(Host).where(Host.hostname.in_(names)))}
    isolate: list[Decision] = []
    suspect: list[Decision] = []
    held: dict[str, str] = {}
    for decision in sorted(wanted, key=lambda d: -d.action.rank):
        if decision.action is Action.ISOLATE:
            why = out.refuse(hosts[decision.hostname])
            if why is None:
                out.admit(hosts[decision.hostname])
                isolate.append(decision)
                continue
            held[decision.hostname] = why
            if lifecycle[decision.hostname] is not Lifecycle.IN_SERVICE:
                continue  # already suspect: it waits there for room
            decision = replace(decision, reason=f"{decision.reason} [isolation held: {why}]")
        suspect.append(decision)
    used = _policy_moves_since(session, now - timedelta(hours=1))
    # An in-service host isolated now is also suspected on the way: it spends the budget too.
    used += sum(1 for d in isolate if lifecycle[d.hostname] is Lifecycle.IN_SERVICE)
    budget = max(0, limits.max_per_hour - used)
    return replace(
        base, isolate=isolate, suspect=suspect[:budget], deferred=suspect[budget:], held=held
    )


def _open_host_findings(session: Session) -> list[tuple[Finding, str, DeviceState | None]]:
    """Open host findings on known hosts, with each host's state and lifecycle row (None: never
    moved)."""
    found = finding_queries.open_about_hosts(session)
    names = sorted({f.entity for f in found})
    hosts = {
        hostname: (state, row)
        for hostname, state, row in session.execute(
            select(Host.hostname, Host.state, DeviceState)
            .outerjoin(DeviceState, DeviceState.host_id == Host.id)
            .where(Host.hostname.in_(names))
        )
    }
    return [(f, *hosts[f.entity]) for f in found if f.entity in hosts]


def _decide(policy: Policy, hostname: str, found: list[Finding], now: datetime) -> Decision | None:
    """The strongest action any finding calls for (evidence: every finding calling for it); None
    if no rule speaks about this host."""
    ruled = [(f, r) for f in found if (r := policy.decide(f, now)) is not None]
    if not ruled:
        return None
    top = max(r.action.rank for _, r in ruled)
    chosen = [(f, r) for f, r in ruled if r.action.rank == top]
    rule = chosen[0][1]
    titles = "; ".join(f.title for f, _ in chosen[:3])
    more = f" (+{len(chosen) - 3} more)" if len(chosen) > 3 else ""
    return Decision(
        hostname=hostname,
        action=rule.action,
        rule=rule.name,
        findings=tuple(f.id for f, _ in chosen),
        reason=f"health policy rule {rule.name}: {titles}{more}",
        repair=max((r.repair for _, r in chosen if r.repair), key=RUNGS.index, default=None),
    )


def _escalated(
    session: Session, decision: Decision, row: DeviceState | None, now: datetime
) -> Decision:
    """Suspicion becomes isolation on probation, or when it keeps coming back."""
    if decision.action is not Action.SUSPECT:
        return decision
    if row is not None and row.probation_until is not None and row.probation_until > now:
        reason = f"{decision.reason} [escalate: failing again on probation after a repair]"
        return replace(decision, action=Action.ISOLATE, escalate=True, reason=reason)
    cleared = session.scalar(
        select(func.count())
        .select_from(DeviceTransition)
        .join(Host, Host.id == DeviceTransition.host_id)
        .where(
            Host.hostname == decision.hostname,
            DeviceTransition.from_state == Lifecycle.SUSPECT.value,
            DeviceTransition.to_state == Lifecycle.IN_SERVICE.value,
            DeviceTransition.at >= now - ESCALATE_WINDOW,
        )
    )
    if (cleared or 0) < ESCALATE_AFTER:
        return decision
    reason = f"{decision.reason} [escalate: suspected {cleared} times in 7 days]"
    return replace(decision, action=Action.ISOLATE, escalate=True, reason=reason)


def _cleared(session: Session, supported: set[str]) -> list[str]:
    """Suspect hosts the policy suspected that no open finding supports any more."""
    rows = session.scalars(
        select(Host.hostname)
        .join(DeviceState, DeviceState.host_id == Host.id)
        .where(
            DeviceState.state == Lifecycle.SUSPECT.value,
            DeviceState.updated_by.startswith(POLICY_PREFIX, autoescape=True),
        )
        .order_by(Host.hostname)
    ).all()
    return [h for h in rows if h not in supported]


def _storm_live(session: Session) -> bool:
    return finding_queries.any_live(session, kind=STORM_KIND)


def _policy_moves_since(session: Session, since: datetime) -> int:
    """Automatic suspicions made since `since`, as the device history records them."""
    count = session.scalar(
        select(func.count())
        .select_from(DeviceTransition)
        .where(
            DeviceTransition.actor.startswith(POLICY_PREFIX, autoescape=True),
            DeviceTransition.to_state == Lifecycle.SUSPECT.value,
            DeviceTransition.at >= since,
        )
    )
    return count or 0


# --- apply ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    moved: list[DeviceTransition]  # suspicions and clearances
    isolations: list[ChangeRequest]
    refused: dict[str, str]  # hostname -> why (its state changed since the evaluation)
    storm: Finding | None


def apply(
    session: Session,
    decisions: Decisions,
    *,
    now: datetime,
    lifecycle: LifecycleConfig | None = None,
) -> Applied:
    """Suspect, isolate (a change per host; without `lifecycle`, isolation stops at suspect) and
    clear the chosen hosts, or raise the `fleet_storm` finding; flush only."""
    moved: list[DeviceTransition] = []
    isolations: list[ChangeRequest] = []
    refused: dict[str, str] = {}
    names = [d.hostname for d in decisions.suspect + decisions.isolate] + decisions.cleared
    hosts = {h.hostname: h for h in session.scalars(select(Host).where(Host.hostname.in_(names)))}
    for decision in decisions.isolate + decisions.suspect:
        ctx = AuditContext(actor=f"{POLICY_PREFIX}{decision.rule}", source="policy")
        host = hosts[decision.hostname]
        try:
            with session.begin_nested():
                done = _act(session, host, decision, ctx=ctx, lifecycle=lifecycle, now=now)
        except AppError as exc:  # its state changed since the evaluation, or the change refused
            refused[decision.hostname] = exc.detail
            continue
        if isinstance(done, DeviceTransition):
            moved.append(done)
        elif done is not None:
            isolations.append(done)
    cleared_by = AuditContext(actor=f"{POLICY_PREFIX}health", source="policy")
    for hostname in decisions.cleared:
        try:
            with session.begin_nested():
                step = transition(
                    session,
                    hosts[hostname],
                    Lifecycle.IN_SERVICE,
                    ctx=cleared_by,
                    reason="suspicion cleared: no open finding supports it any more",
                    now=now,
                )
                moved.append(step)
        except TransitionRefused as exc:
            refused[hostname] = exc.detail
    storm = _report_storm(session, decisions.storm, now) if decisions.storm else None
    return Applied(moved, isolations, refused, storm)


def _act(
    session: Session,
    host: Host,
    decision: Decision,
    *,
    ctx: AuditContext,
    lifecycle: LifecycleConfig | None,
    now: datetime,
) -> ChangeRequest | DeviceTransition | None:
    """Isolate the host (its change) or suspect it (the step); None when it is no longer in
    service."""
    if decision.action is Action.ISOLATE and lifecycle is not None:
        return isolate(
            session,
            host,
            ctx=ctx,
            reason=decision.reason,
            evidence=decision.findings,
            config=lifecycle,
            repair=decision.repair,
            now=now,
        )
    if current(session, host) is Lifecycle.IN_SERVICE:
        return transition(
            session,
            host,
            Lifecycle.SUSPECT,
            ctx=ctx,
            reason=decision.reason,
            evidence=decision.findings,
            now=now,
        )
    return None


def _report_storm(session: Session, storm: Storm, now: datetime) -> Finding:
    finding, _ = findings.report(
        session,
        Observation(
            kind=STORM_KIND,
            detector=DETECTOR,
            entity_type="fleet",
            entity="fleet",
            severity=Severity.CRITICAL.value,
            score=float(len(storm.hosts)),
            title=(
                f"health policy wants {len(storm.hosts)} of {storm.fleet} hosts suspect or "
                f"isolated at once (limit {storm.threshold}); automatic moves stopped until this "
                "is resolved"
            ),
            evidence=[{"type": "finding", "id": i} for i in storm.findings[:MAX_EVIDENCE]],
            details={
                "hosts": list(storm.hosts),
                "threshold": storm.threshold,
                "fleet": storm.fleet,
            },
            onset_at=now,
        ),
        now=now,
    )
    return finding
