"""Extraction rules: turn a mined line into an aggregation event, or nothing.

Rules are data (YAML) so a site can teach fleetops its own job and error lines without code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetops.kit.yamlerrors import error_line, error_problem

BUILTIN = Path(__file__).with_name("rules.yaml")
KINDS = ("task_finished", "task_failed", "job_state", "transfer", "transfer_failed", "signature")


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    contains: str
    pattern: re.Pattern[str]
    signature: str = ""
    sources: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    rule: Rule
    fields: dict[str, str]


class Rules:
    """An ordered rule set; the first matching rule of a line wins."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    def match(self, content: str, source: str) -> Event | None:
        for rule in self.rules:
            if rule.contains in content and (not rule.sources or source in rule.sources):
                found = rule.pattern.search(content)
                if found is not None:
                    fields = {k: v for k, v in found.groupdict().items() if v is not None}
                    return Event(rule.kind, rule, fields)
        return None


def load_rules(*paths: Path) -> Rules:
    """The built-in rules, then each site file's (a same-named site rule replaces a built-in)."""
    by_name: dict[str, Rule] = {}
    for path in (BUILTIN, *paths):
        for rule in _read(path):
            by_name[rule.name] = rule
    return Rules(list(by_name.values()))


def _read(path: Path) -> list[Rule]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise RuleError(f"{path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = error_line(exc, text)
        raise RuleError(f"{path}{f':{line}' if line else ''}: {error_problem(exc)}") from None
    items = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise RuleError(f"{path}: expected a mapping with a `rules:` list")
    return [_rule(path, n, item) for n, item in enumerate(items, 1)]


def _rule(path: Path, n: int, item: Any) -> Rule:
    where = f"{path}: rule {n}"
    if not isinstance(item, dict):
        raise RuleError(f"{where}: expected a mapping")
    unknown = set(item) - {"name", "kind", "contains", "pattern", "signature", "sources"}
    if unknown:
        raise RuleError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    name, kind = item.get("name"), item.get("kind")
    if not isinstance(name, str) or not name:
        raise RuleError(f"{where}: `name` is required")
    if kind not in KINDS:
        raise RuleError(f"{where} ({name}): `kind` must be one of {', '.join(KINDS)}")
    try:
        pattern = re.compile(str(item.get("pattern", "")))
    except re.error as exc:
        raise RuleError(f"{where} ({name}): bad pattern: {exc}") from None
    if kind == "signature" and not item.get("signature"):
        raise RuleError(f"{where} ({name}): a signature rule needs `signature`")
    return Rule(
        name=name,
        kind=kind,
        contains=str(item.get("contains", "")),
        pattern=pattern,
        signature=str(item.get("signature", "")),
        sources=frozenset(item.get("sources") or ()),
    )
