"""Remediation rules: which findings call for which remedy, in which mode, within which budget.

A rule file is data a person edits, like the health policy's: every error names the file and
line. A site's rules come before the shipped ones, and a site rule with a shipped rule's name
replaces it. The shipped rules start in dry run: they record what they would do, and an admin
enables each (`fleetops policy enable NAME`) once its record looks right.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from fleetops.devices.enums import Remedy, RuleMode
from fleetops.devices.policy.rules import (
    PolicyError,
    line_of,
    merged,
    parse_rules,
    read_rules,
)
from fleetops.devices.repairs.service import RUNGS
from fleetops.findings.enums import Severity
from fleetops.models import Finding

BUILTIN = Path(__file__).with_name("remediation.yaml")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._:-]{0,127}$")  # a systemd unit name
_KEYS = frozenset(
    {
        "name",
        "description",
        "kind",
        "signature",
        "min_severity",
        "action",
        "repair",
        "service",
        "percent",
        "mode",
        "per_hour",
        "hosts_out",
        "verify_minutes",
    }
)


@dataclass(frozen=True)
class RemediationRule:
    """One rule: open host findings of `kind` (and `signature`, at least `min_severity`) call for
    `action`; at most `per_hour` actions an hour and `hosts_out` hosts being worked on at once."""

    name: str
    kind: str
    action: Remedy
    mode: RuleMode = RuleMode.DRY_RUN
    description: str = ""
    signature: str | None = None
    min_severity: Severity | None = None
    repair: str | None = None  # drain: the rung its repair ticket starts at
    service: str | None = None  # restart_service: the systemd unit
    percent: int = 1  # release_reserve: the share of blocks root keeps afterwards
    per_hour: int = 2
    hosts_out: int = 1
    verify: timedelta = timedelta(hours=1)

    def covers(self, finding: Finding) -> bool:
        """Whether `finding` is of this rule's sort."""
        if finding.entity_type != "host" or finding.kind != self.kind:
            return False
        if self.signature is not None and finding.details.get("signature") != self.signature:
            return False
        return self.min_severity is None or Severity(finding.severity).rank >= (
            self.min_severity.rank
        )


@dataclass(frozen=True)
class Remediation:
    """The rules, in order: a finding is acted on by the first rule that covers it."""

    rules: tuple[RemediationRule, ...]

    def get(self, name: str) -> RemediationRule | None:
        return next((r for r in self.rules if r.name == name), None)


def load_remediation(site: Path | None = None) -> Remediation:
    """The shipped rules, a site file's first (a same-named one replaces a shipped rule)."""
    return Remediation(
        tuple(merged(read_rules(BUILTIN, _rule), read_rules(site, _rule) if site else None))
    )


def parse_remediation(text: str, *, source: str = "<remediation>") -> list[RemediationRule]:
    """The rules of one document; PolicyError with `source:line` if it is wrong."""
    return parse_rules(text, _rule, source=source)


def _whole(item: dict[str, Any], key: str, default: int, least: int) -> int:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"`{key}` must be a whole number of at least {least}, got {value!r}")
    return value


def _action_fields(
    item: dict[str, Any], action: Remedy, fail: Callable[[str, str], PolicyError]
) -> tuple[str | None, str | None, int]:
    """The keys that go with one action: `repair` (drain), `service` (restart_service) and
    `percent` (release_reserve), each checked."""
    repair, service, percent = item.get("repair"), item.get("service"), item.get("percent", 1)
    if repair is not None and (action is not Remedy.DRAIN or repair not in RUNGS):
        raise fail(f"`repair` goes with `action: drain`, one of {' | '.join(RUNGS)}", "repair")
    if (action is Remedy.RESTART_SERVICE) != (service is not None):
        raise fail("`service` (a systemd unit) goes with `action: restart_service`", "service")
    if service is not None and (not isinstance(service, str) or not UNIT.match(service)):
        raise fail(f"`service` is not a systemd unit name: {service!r}", "service")
    if "percent" in item and action is not Remedy.RELEASE_RESERVE:
        raise fail("`percent` goes with `action: release_reserve`", "percent")
    if isinstance(percent, bool) or percent not in range(6):
        raise fail(f"`percent` must be a whole number from 0 to 5, got {percent!r}", "percent")
    return repair, service, percent


def _rule(source: str, n: int, item: Any, node: yaml.Node) -> RemediationRule:
    def fail(message: str, key: str | None = None) -> PolicyError:
        name = f" ({item['name']})" if isinstance(item, dict) and "name" in item else ""
        return PolicyError(f"{source}:{line_of(node, key)}: rule {n}{name}: {message}")

    if not isinstance(item, dict):
        raise fail("expected a mapping")
    unknown = set(item) - _KEYS
    if unknown:
        raise fail(f"unknown keys {', '.join(sorted(map(str, unknown)))}")
    if not isinstance(item.get("name"), str) or not NAME.match(item["name"]):
        raise fail("`name` must be lowercase letters, digits and dashes (at most 64)", "name")
    if not isinstance(item.get("kind"), str) or not item["kind"].strip():
        raise fail("`kind` is required (a non-empty string)", "kind")
    for key, allowed in (("action", Remedy), ("mode", RuleMode)):
        if key in item or key == "action":
            if item.get(key) not in list(allowed):
                raise fail(f"`{key}` must be one of {' | '.join(allowed)}", key)
    action = Remedy(item["action"])
    repair, service, percent = _action_fields(item, action, fail)
    signature = item.get("signature")
    if signature is not None and (not isinstance(signature, str) or not signature):
        raise fail("`signature` must be a non-empty string", "signature")
    severity = item.get("min_severity")
    if severity is not None and severity not in list(Severity):
        raise fail(f"`min_severity` must be one of {' | '.join(Severity)}", "min_severity")
    description = item.get("description", "")
    if not isinstance(description, str):
        raise fail("`description` must be text", "description")
    budget: dict[str, int] = {}
    for key, default, least in (("per_hour", 2, 0), ("hosts_out", 1, 1), ("verify_minutes", 60, 1)):
        try:
            budget[key] = _whole(item, key, default, least)
        except ValueError as exc:
            raise fail(str(exc), key) from None
    return RemediationRule(
        name=item["name"],
        kind=item["kind"].strip(),
        action=action,
        mode=RuleMode(item.get("mode", RuleMode.DRY_RUN.value)),
        description=" ".join(description.split()),
        signature=signature,
        min_severity=Severity(severity) if severity is not None else None,
        repair=repair,
        service=service,
        percent=percent,
        per_hour=budget["per_hour"],
        hosts_out=budget["hosts_out"],
        verify=timedelta(minutes=budget["verify_minutes"]),
    )
