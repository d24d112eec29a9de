"""The health policy's rules: the YAML a site writes, checked line by line, and how a rule matches.

Kept apart from evaluating and applying the policy because a rule file is data a person edits:
its errors must name the file and line, and which rule decides a finding must be readable alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from fleetops.devices.repairs.service import RUNGS
from fleetops.findings.enums import Severity
from fleetops.kit.yamlerrors import error_line, error_problem
from fleetops.models import Finding

BUILTIN = Path(__file__).with_name("policy.yaml")
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
    return Policy(
        tuple(merged(read_rules(BUILTIN, _rule), read_rules(site, _rule) if site else None))
    )


def parse_policy(text: str, *, source: str = "<policy>") -> list[PolicyRule]:
    """The rules of one policy document; PolicyError with `source:line` if it is wrong."""
    return parse_rules(text, _rule, source=source)


class Named(Protocol):
    @property
    def name(self) -> str: ...


R = TypeVar("R", bound=Named)
RuleMaker = Callable[[str, int, Any, yaml.Node], R]


def merged(builtin: list[R], site: list[R] | None) -> list[R]:
    """A site file's rules first, then the built-in ones it does not replace by name."""
    ours = site or []
    names = {r.name for r in ours}
    return ours + [r for r in builtin if r.name not in names]


def parse_rules(text: str, make: RuleMaker[R], *, source: str) -> list[R]:
    """The rules of a YAML document `rules: [...]`, each made by `make(source, n, item, node)`,
    names unique; PolicyError with `source:line` if it is wrong (for every rule file)."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        line = error_line(exc, text)
        raise PolicyError(f"{source}{f':{line}' if line else ''}: {error_problem(exc)}") from None
    items = data.get("rules") if isinstance(data, dict) else None
    nodes = rule_nodes(root)
    if not isinstance(items, list) or nodes is None:
        raise PolicyError(f"{source}:1: expected a mapping with a `rules:` list")
    pairs = enumerate(zip(items, nodes, strict=True), 1)
    rules = [make(source, n, item, node) for n, (item, node) in pairs]
    seen: set[str] = set()
    for rule, node in zip(rules, nodes, strict=True):
        if rule.name in seen:
            raise PolicyError(f"{source}:{line_of(node)}: rule name {rule.name!r} is used twice")
        seen.add(rule.name)
    return rules


def read_rules(path: Path, make: RuleMaker[R]) -> list[R]:
    """`parse_rules` of a file; an unreadable one is a PolicyError naming it."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: {exc.strerror}") from None
    return parse_rules(text, make, source=str(path))


def rule_nodes(root: yaml.Node | None) -> list[yaml.Node] | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if key.value == "rules" and isinstance(value, yaml.SequenceNode):
            return list(value.value)
    return None


def line_of(node: yaml.Node, key: str | None = None) -> int:
    """The 1-based line of `node`, or of its `key`'s value if it has that key."""
    if key is not None and isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return int(v.start_mark.line) + 1
    return int(node.start_mark.line) + 1


def _rule(source: str, n: int, item: Any, node: yaml.Node) -> PolicyRule:
    def fail(message: str, key: str | None = None) -> PolicyError:
        name = f" ({item['name']})" if isinstance(item, dict) and "name" in item else ""
        return PolicyError(f"{source}:{line_of(node, key)}: rule {n}{name}: {message}")

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
