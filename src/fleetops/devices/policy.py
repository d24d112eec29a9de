"""Health policy: turn open host findings into suspicion, within safety limits.

Rules are data (YAML) so a site can say which signals matter on its hardware without code.
`evaluate` only reads (findings, device states, device history) and says what it would do;
`apply` does it through the one transition function. The limits exist because the well-known way
automated isolation goes wrong is a bad rule or a fleet-wide event moving many hosts at once: above
the storm threshold nothing moves and a `fleet_storm` finding asks a human to look (Cluster API's
maxUnhealthy short-circuit); while that finding is live, the policy moves nobody.
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
from fleetops.devices.states import INITIAL, POLICY_PREFIX, Lifecycle, TransitionRefused, transition
from fleetops.findings import service as findings
from fleetops.findings.service import Severity
from fleetops.findings.states import LIVE, FindingStatus
from fleetops.kit.yamlerrors import error_line, error_problem
from fleetops.models import DeviceState, DeviceTransition, Finding, Host

BUILTIN = Path(__file__).with_name("policy.yaml")
STORM_KIND = "fleet_storm"
DETECTOR = "health-policy"
ESCALATE_AFTER = 2  # suspicions cleared within ESCALATE_WINDOW before the next one escalates
ESCALATE_WINDOW = timedelta(days=7)
MAX_EVIDENCE = 50
_KEYS = frozenset(
    {"name", "kind", "signature", "min_severity", "action", "window_minutes", "count"}
)


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and line."""


class Action(StrEnum):
    SUSPECT = "suspect"
    IGNORE = "ignore"


@dataclass(frozen=True)
class PolicyRule:
    name: str
    kind: str
    action: Action
    window: timedelta
    count: int
    signature: str | None = None
    min_severity: Severity | None = None

    def matches(self, finding: Finding, now: datetime) -> bool:
        """Whether `finding` is of this rule's sort and was seen often and recently enough."""
        if finding.kind != self.kind:
            return False
        if self.signature is not None and finding.details.get("signature") != self.signature:
            return False
        if self.min_severity is not None and (
            Severity(finding.severity).rank < self.min_severity.rank
        ):
            return False
        return finding.occurrences >= self.count and finding.last_seen >= now - self.window


@dataclass(frozen=True)
class Policy:
    """An ordered rule list: the first rule that matches a finding decides it."""

    rules: tuple[PolicyRule, ...]

    def decide(self, finding: Finding, now: datetime) -> PolicyRule | None:
        return next((r for r in self.rules if r.matches(finding, now)), None)


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
    )


# --- evaluate ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """How far the policy may go on its own. The storm threshold is the smaller of
    `storm_fraction` of the fleet (at least one host) and `storm_hosts`, if set."""

    max_per_hour: int = 20
    storm_fraction: float = 0.05
    storm_hosts: int | None = None

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
    escalate: bool = False  # suspected again after repeated cleared suspicions: propose draining


@dataclass(frozen=True)
class Storm:
    hosts: tuple[str, ...]
    threshold: int
    fleet: int
    findings: tuple[int, ...]


@dataclass(frozen=True)
class Decisions:
    """One evaluation: who to move now, who waits (hourly cap or a live storm), who is ignored,
    which hosts with findings were skipped (not in service), and the storm, if any."""

    now: datetime
    suspect: list[Decision] = field(default_factory=list)
    deferred: list[Decision] = field(default_factory=list)
    ignored: list[Decision] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    storm: Storm | None = None
    halted: bool = False  # a fleet_storm finding is still live: nothing moves until it is resolved


def evaluate(session: Session, policy: Policy, *, now: datetime, limits: Limits) -> Decisions:
    """Decide, for every host with open findings, whether to suspect it, ignore it, or wait."""
    by_host: dict[str, list[Finding]] = {}
    states: dict[str, Lifecycle] = {}
    for finding, state in _open_host_findings(session):
        by_host.setdefault(finding.entity, []).append(finding)
        states[finding.entity] = Lifecycle(state)
    wanted: list[Decision] = []
    ignored: list[Decision] = []
    skipped = sorted(h for h, s in states.items() if s is not Lifecycle.IN_SERVICE)
    for hostname in sorted(set(by_host) - set(skipped)):
        decision = _decide(policy, hostname, by_host[hostname], now)
        if decision is not None:
            (wanted if decision.action is Action.SUSPECT else ignored).append(decision)
    wanted = [_with_escalation(session, d, now) for d in wanted]
    base = Decisions(now=now, ignored=ignored, skipped=skipped)
    if _storm_live(session):
        return replace(base, deferred=wanted, halted=True)
    fleet = session.scalar(select(func.count()).select_from(Host)) or 0
    threshold = limits.storm_threshold(fleet)
    if len(wanted) > threshold:
        ids = tuple(i for d in wanted for i in d.findings)
        storm = Storm(tuple(d.hostname for d in wanted), threshold, fleet, ids)
        return replace(base, deferred=wanted, storm=storm)
    budget = max(0, limits.max_per_hour - _policy_moves_since(session, now - timedelta(hours=1)))
    return replace(base, suspect=wanted[:budget], deferred=wanted[budget:])


def _open_host_findings(session: Session) -> list[tuple[Finding, str]]:
    """Open host findings on known hosts, with each host's lifecycle state."""
    state = func.coalesce(DeviceState.state, INITIAL.value)
    rows = session.execute(
        select(Finding, state)
        .join(Host, Host.hostname == Finding.entity)
        .outerjoin(DeviceState, DeviceState.host_id == Host.id)
        .where(Finding.entity_type == "host", Finding.status == FindingStatus.OPEN.value)
        .order_by(Finding.id)
    ).all()
    return [(f, s) for f, s in rows]


def _decide(policy: Policy, hostname: str, found: list[Finding], now: datetime) -> Decision | None:
    """Suspect if any finding says so (evidence: every such finding), else ignore if any rule
    matched; None if no rule speaks about this host."""
    ruled = [(f, r) for f in found if (r := policy.decide(f, now)) is not None]
    suspects = [(f, r) for f, r in ruled if r.action is Action.SUSPECT]
    chosen = suspects or ruled
    if not chosen:
        return None
    rule = chosen[0][1]
    titles = "; ".join(f.title for f, _ in chosen[:3])
    more = f" (+{len(chosen) - 3} more)" if len(chosen) > 3 else ""
    return Decision(
        hostname=hostname,
        action=rule.action,
        rule=rule.name,
        findings=tuple(f.id for f, _ in chosen),
        reason=f"health policy rule {rule.name}: {titles}{more}",
    )


def _with_escalation(session: Session, decision: Decision, now: datetime) -> Decision:
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
    return replace(decision, escalate=True, reason=reason)


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
    moved: list[DeviceTransition]
    refused: dict[str, str]  # hostname -> why (its state changed since the evaluation)
    storm: Finding | None


def apply(session: Session, decisions: Decisions, *, now: datetime) -> Applied:
    """Suspect the chosen hosts, or raise the `fleet_storm` finding; flush only."""
    moved: list[DeviceTransition] = []
    refused: dict[str, str] = {}
    hosts = {
        h.hostname: h
        for h in session.scalars(
            select(Host).where(Host.hostname.in_([d.hostname for d in decisions.suspect]))
        )
    }
    for decision in decisions.suspect:
        try:
            moved.append(
                transition(
                    session,
                    hosts[decision.hostname],
                    Lifecycle.SUSPECT,
                    ctx=AuditContext(actor=f"{POLICY_PREFIX}{decision.rule}", source="policy"),
                    reason=decision.reason,
                    evidence=decision.findings,
                    now=now,
                )
            )
        except TransitionRefused as exc:
            refused[decision.hostname] = exc.detail
    storm = _report_storm(session, decisions.storm, now) if decisions.storm else None
    return Applied(moved, refused, storm)


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
            f"health policy wants {len(storm.hosts)} of {storm.fleet} hosts suspect at once "
            f"(limit {storm.threshold}); automatic moves stopped until this is resolved"
        ),
        evidence=[{"type": "finding", "id": i} for i in storm.findings[:MAX_EVIDENCE]],
        details={"hosts": list(storm.hosts), "threshold": storm.threshold, "fleet": storm.fleet},
        onset_at=now,
        now=now,
    )
    return finding
