"""Health policy: turn open host findings into suspicion and isolation, within safety limits.

Rules are data (YAML) so a site can say which signals matter on its hardware without code.
`evaluate` only reads (findings, device states, device history) and says what it would do;
`apply` does it through the one transition function and, for isolation, a change (see
`devices.lifecycle`). The limits exist because the well-known way automated isolation goes wrong
is a bad rule or a fleet-wide event moving many hosts at once: above the storm threshold nothing
moves and a `fleet_storm` finding asks a human to look (Cluster API's maxUnhealthy short-circuit);
while that finding is live, the policy moves nobody. Below it, isolation is further capped per
rack, per cluster and per hour (`devices.safety`).

Suspicion escalates to isolation when it keeps coming back (cleared twice within 7 days) or when
the device is on probation after a repair; a suspicion the policy raised is cleared once no open
finding supports it any more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.devices.lifecycle import LifecycleConfig, isolate
from fleetops.devices.repairs import RUNGS
from fleetops.devices.safety import Caps, OutOfService
from fleetops.devices.states import INITIAL, POLICY_PREFIX, Lifecycle, TransitionRefused, transition
from fleetops.errors import AppError
from fleetops.findings import service as findings
from fleetops.findings.service import Severity
from fleetops.findings.states import LIVE, FindingStatus
from fleetops.kit.yamlerrors import error_line, error_problem
from fleetops.models import ChangeRequest, DeviceState, DeviceTransition, Finding, Host

BUILTIN = Path(__file__).with_name("policy.yaml")
STORM_KIND = "fleet_storm"
DETECTOR = "health-policy"
ESCALATE_AFTER = 2  # suspicions cleared within ESCALATE_WINDOW before the next one escalates
ESCALATE_WINDOW = timedelta(days=7)
MAX_EVIDENCE = 50
_KEYS = frozenset(
    {
        "name",
        "kind",
        "signature",
        "min_severity",
        "action",
        "window_minutes",
        "count",
        "repair",
        "corroborate",
    }
)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and line."""


class Action(StrEnum):
    ISOLATE = "isolate"  # drain it now (through a change), then repair
    SUSPECT = "suspect"  # watch it; repeated suspicion escalates to isolation
    IGNORE = "ignore"

    @property
    def rank(self) -> int:
        return {"isolate": 2, "suspect": 1, "ignore": 0}[self.value]


@dataclass(frozen=True)
class PolicyRule:
    name: str
    kind: str
    action: Action
    window: timedelta
    count: int
    signature: str | None = None
    min_severity: Severity | None = None
    repair: str | None = None  # the rung an isolation's repair starts at (default: the first)
    # An isolation on log evidence alone needs this many lines behind it (a repeat), since any
    # holder of an unbound ingest token or an allowed syslog sender can write a line naming any
    # host; fewer make the host suspect instead. 1: a single line is enough (the policy says so).
    corroborate: int = 2

    def matches(self, finding: Finding, now: datetime) -> bool:
        """Whether `finding` is of this rule's sort and was seen often and recently enough."""
        return self.covers(finding) and (
            finding.occurrences >= self.count and finding.last_seen >= now - self.window
        )

    def covers(self, finding: Finding) -> bool:
        """Whether `finding` is of this rule's sort, however often or long ago it was seen."""
        if finding.kind != self.kind:
            return False
        if self.signature is not None and finding.details.get("signature") != self.signature:
            return False
        if self.min_severity is not None and (
            Severity(finding.severity).rank < self.min_severity.rank
        ):
            return False
        return True


@dataclass(frozen=True)
class Policy:
    """An ordered rule list: the first rule that matches a finding decides it."""

    rules: tuple[PolicyRule, ...]

    def decide(self, finding: Finding, now: datetime) -> PolicyRule | None:
        rule = next((r for r in self.rules if r.matches(finding, now)), None)
        if rule is None or rule.action is not Action.ISOLATE or corroborated(rule, finding):
            return rule
        return replace(rule, name=f"{rule.name}-uncorroborated", action=Action.SUSPECT)

    def supports_suspicion(self, finding: Finding) -> bool:
        """Whether an open `finding` still backs a suspicion: the first rule of its sort acts on
        it (a suspicion is not cleared just because the finding went quiet for a while)."""
        rule = next((r for r in self.rules if r.covers(finding)), None)
        return rule is not None and rule.action is not Action.IGNORE


# Findings that come from log lines alone (anyone allowed to send lines can cause one), as
# opposed to a tool's reading an operator posted or a probe the server ran.
LOG_DETECTORS = frozenset({"error-signatures", "template-burst", "straggler", "link-tomography"})


def corroborated(rule: PolicyRule, finding: Finding) -> bool:
    """Whether `finding` may isolate under `rule`: evidence beyond log lines, or enough lines."""
    if finding.detector not in LOG_DETECTORS:
        return True
    lines = finding.details.get("count") if isinstance(finding.details, dict) else None
    return isinstance(lines, int) and lines >= rule.corroborate


def load_policy(site: Path | None = None) -> Policy:
    """The built-in policy, a site file's rules first (a same-named one replaces a built-in)."""
    builtin = _read(BUILTIN)
    ours = _read(site) if site is not None else []
    names = {r.name for r in ours}
    return Policy(tuple(ours + [r for r in builtin if r.name not in names]))


def parse_policy(text: str, *, source: str = "<policy>") -> list[PolicyRule]:
    """The rules of one policy document; PolicyError with `source:line` if it is wrong."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        line = error_line(exc, text)
        raise PolicyError(f"{source}{f':{line}' if line else ''}: {error_problem(exc)}") from None
    items = data.get("rules") if isinstance(data, dict) else None
    nodes = _rule_nodes(root)
    if not isinstance(items, list) or nodes is None:
        raise PolicyError(f"{source}:1: expected a mapping with a `rules:` list")
    rules = [
        _rule(f"{source}", n, item, node)
        for n, (item, node) in enumerate(zip(items, nodes, strict=True), 1)
    ]
    seen: set[str] = set()
    for rule, node in zip(rules, nodes, strict=True):
        if rule.name in seen:
            raise PolicyError(f"{source}:{_line(node)}: rule name {rule.name!r} is used twice")
        seen.add(rule.name)
    return rules


def _read(path: Path) -> list[PolicyRule]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: {exc.strerror}") from None
    return parse_policy(text, source=str(path))


def _rule_nodes(root: yaml.Node | None) -> list[yaml.Node] | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if key.value == "rules" and isinstance(value, yaml.SequenceNode):
            return list(value.value)
    return None


def _line(node: yaml.Node, key: str | None = None) -> int:
    """The 1-based line of `node`, or of its `key`'s value if it has that key."""
    if key is not None and isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return int(v.start_mark.line) + 1
    return int(node.start_mark.line) + 1


def _rule(source: str, n: int, item: Any, node: yaml.Node) -> PolicyRule:
    def fail(message: str, key: str | None = None) -> PolicyError:
        name = f" ({item['name']})" if isinstance(item, dict) and "name" in item else ""
        return PolicyError(f"{source}:{_line(node, key)}: rule {n}{name}: {message}")

    if not isinstance(item, dict):
        raise fail("expected a mapping")
    unknown = set(item) - _KEYS
    if unknown:
        raise fail(f"unknown keys {', '.join(sorted(map(str, unknown)))}")
    for key in ("name", "kind"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise fail(f"`{key}` is required (a non-empty string)", key)
    if item.get("action") not in list(Action):
        raise fail(f"`action` must be one of {' | '.join(Action)}", "action")
    for key in ("window_minutes", "count"):
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail(f"`{key}` must be a whole number of at least 1, got {value!r}", key)
    signature = item.get("signature")
    if signature is not None and (not isinstance(signature, str) or not signature):
        raise fail("`signature` must be a non-empty string", "signature")
    repair = item.get("repair")
    if repair is not None and repair not in RUNGS:
        raise fail(f"`repair` must be one of {' | '.join(RUNGS)}", "repair")
    if repair is not None and item.get("action") != Action.ISOLATE.value:
        raise fail("`repair` only goes with `action: isolate`", "repair")
    corroborate = item.get("corroborate", 2)
    if isinstance(corroborate, bool) or not isinstance(corroborate, int) or corroborate < 1:
        raise fail(f"`corroborate` must be a whole number of at least 1, got {corroborate!r}",
                   "corroborate")  # fmt: skip
    severity = item.get("min_severity")
    if severity is not None and severity not in list(Severity):
        raise fail(f"`min_severity` must be one of {' | '.join(Severity)}", "min_severity")
    return PolicyRule(
        name=item["name"].strip(),
        kind=item["kind"].strip(),
        action=Action(item["action"]),
        window=timedelta(minutes=item["window_minutes"]),
        count=item["count"],
        signature=signature,
        min_severity=Severity(severity) if severity is not None else None,
        repair=repair,
        corroborate=corroborate,
    )


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
    rows = session.execute(
        select(Finding, Host.state, DeviceState)
        .join(Host, Host.hostname == Finding.entity)
        .outerjoin(DeviceState, DeviceState.host_id == Host.id)
        .where(Finding.entity_type == "host", Finding.status == FindingStatus.OPEN.value)
        .order_by(Finding.id)
    ).all()
    return [(f, state, row) for f, state, row in rows]


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
    return (
        session.scalar(
            select(Finding.id)
            .where(Finding.kind == STORM_KIND, Finding.status.in_([s.value for s in LIVE]))
            .limit(1)
        )
        is not None
    )


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
                if decision.action is Action.ISOLATE and lifecycle is not None:
                    change = isolate(
                        session,
                        host,
                        ctx=ctx,
                        reason=decision.reason,
                        evidence=decision.findings,
                        config=lifecycle,
                        repair=decision.repair,
                        now=now,
                    )
                    isolations.append(change)
                elif _current(session, host) is Lifecycle.IN_SERVICE:
                    step = transition(
                        session,
                        host,
                        Lifecycle.SUSPECT,
                        ctx=ctx,
                        reason=decision.reason,
                        evidence=decision.findings,
                        now=now,
                    )
                    moved.append(step)
        except AppError as exc:  # its state changed since the evaluation, or the change refused
            refused[decision.hostname] = exc.detail
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


def _current(session: Session, host: Host) -> Lifecycle:
    return Lifecycle(session.scalar(select(Host.state).where(Host.id == host.id)) or INITIAL)


def _report_storm(session: Session, storm: Storm, now: datetime) -> Finding:
    finding, _ = findings.report(
        session,
        kind=STORM_KIND,
        detector=DETECTOR,
        entity_type="fleet",
        entity="fleet",
        severity=Severity.CRITICAL.value,
        score=float(len(storm.hosts)),
        title=(
            f"health policy wants {len(storm.hosts)} of {storm.fleet} hosts suspect or isolated "
            f"at once (limit {storm.threshold}); automatic moves stopped until this is resolved"
        ),
        evidence=[{"type": "finding", "id": i} for i in storm.findings[:MAX_EVIDENCE]],
        details={"hosts": list(storm.hosts), "threshold": storm.threshold, "fleet": storm.fleet},
        onset_at=now,
        now=now,
    )
    return finding
