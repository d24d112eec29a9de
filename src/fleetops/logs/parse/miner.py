"""Streaming Drain-style template mining: one pass, bounded memory, no per-source tuning.

Each message is masked (numbers, IPs, hex, block/container/application ids, paths become
variables), then routed down a fixed-depth prefix tree (by token count, then by the first
tokens) to a small set of candidate templates; the most similar one above a threshold absorbs
the message (differing positions become `<*>`), otherwise a new template starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WILDCARD = "<*>"
_MASKS: list[re.Pattern[str]] = [
    re.compile(p)
    for p in (
        r"^(?:blk|application|container|appattempt|attempt|job|task)_[-\w]+$",
        r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        r"^/?\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?$",
        r"^0x[0-9a-fA-F]+$",
        r"^[0-9a-fA-F]{16,}$",
        r"^[-+]?\d+(?:[.,:]\d+)*[A-Za-z%]{0,3}$",
        r"^(?:/[^/\s]+){2,}/?$",
    )
]
_SPLIT = re.compile(r"\s+")
# Punctuation around a value does not make two messages different: "size=123," ~ "size=9,"
_EDGES = re.compile(r"^([\[(\"'{<]*)(.*?)([\])\"'}>,;.:]*)$")


def tokenize(message: str) -> list[str]:
    """Split a message into tokens, masking the ones that are plainly variable."""
    return [mask(token) for token in _SPLIT.split(message.strip()) if token]


def mask(token: str) -> str:
    head, core, tail = _EDGES.match(token).groups()  # type: ignore[union-attr]
    if core and any(p.match(core) for p in _MASKS):
        return f"{head}{WILDCARD}{tail}"
    if "=" in core:  # key=value: keep the key, judge the value
        key, _, value = core.partition("=")
        if value and any(p.match(value) for p in _MASKS):
            return f"{head}{key}={WILDCARD}{tail}"
    return token


def _has_digit(token: str) -> bool:
    return any(c.isdigit() for c in token)


@dataclass
class Template:
    """A group of messages that share a shape."""

    id: int
    tokens: list[str]
    count: int = 0

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def similarity(self, tokens: list[str]) -> tuple[float, int]:
        same = wild = 0
        for ours, theirs in zip(self.tokens, tokens, strict=True):
            if ours == WILDCARD:
                wild += 1
            elif ours == theirs:
                same += 1
        return same / len(tokens), wild

    def absorb(self, tokens: list[str]) -> None:
        self.tokens = [a if a == b else WILDCARD for a, b in zip(self.tokens, tokens, strict=True)]
        self.count += 1


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    templates: list[Template] = field(default_factory=list)


@dataclass(frozen=True)
class Match:
    template: Template
    params: list[str]


class TemplateMiner:
    """Groups messages into templates as they stream in."""

    def __init__(self, *, depth: int = 4, similarity: float = 0.5, max_children: int = 100) -> None:
        self.depth = max(3, depth)
        self.threshold = similarity
        self.max_children = max_children
        self.root = _Node()
        self.templates: list[Template] = []
        self._next_id = 1

    def add(self, message: str) -> Match:
        """Assign a message to a template (creating or widening one) and return its parameters."""
        tokens = tokenize(message)
        leaf = self._leaf(tokens)
        best: Template | None = None
        best_key = (-1.0, -1)
        for template in leaf.templates:
            score, wild = template.similarity(tokens)
            if score >= self.threshold and (score, wild) > best_key:
                best, best_key = template, (score, wild)
        if best is None:
            best = Template(id=self._next_id, tokens=list(tokens))
            self._next_id += 1
            self.templates.append(best)
            leaf.templates.append(best)
            best.count = 1
        else:
            best.absorb(tokens)
        raw = _SPLIT.split(message.strip()) if message.strip() else []
        params = [r for t, r in zip(best.tokens, raw, strict=False) if t == WILDCARD]
        return Match(best, params)

    def restore(self, template_id: int, text: str, count: int = 0) -> Template:
        """Put back a template stored earlier, keeping its id (ids are stable across restarts)."""
        template = Template(id=template_id, tokens=text.split(" "), count=count)
        self._leaf(template.tokens).templates.append(template)
        self.templates.append(template)
        self._next_id = max(self._next_id, template_id + 1)
        return template

    def _leaf(self, tokens: list[str]) -> _Node:
        node = self.root.children.setdefault(str(len(tokens)), _Node())
        for token in tokens[: self.depth - 2]:
            key = WILDCARD if (WILDCARD in token or _has_digit(token)) else token
            if key not in node.children and len(node.children) >= self.max_children:
                key = WILDCARD
            node = node.children.setdefault(key, _Node())
        return node
