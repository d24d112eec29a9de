"""What operation and workflow specs share: `Issue`, `SpecError` and line-aware YAML loading.

A spec file is rejected as a whole with every problem it has, each named by its exact path
(`stages[1].strategy.batch`) and, when it came from YAML, its line, so an author fixes a file in
one pass instead of one error per attempt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from fleetops.errors import BadRequest
from fleetops.kit.yamlerrors import error_line, error_problem

try:  # libyaml is several times faster; the constructors stay the safe ones
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem in a spec: where (`path`, `line`, `source` file) and what."""

    path: str
    message: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.line is not None:
            text += f" (line {self.line})"
        return f"{self.source}: {text}" if self.source else text


class SpecError(BadRequest):
    """A spec (operation, workflow, template or parameters) is invalid; `issues` says where."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = list(issues)
        if len(self.issues) == 1:
            detail = str(self.issues[0])
        else:
            detail = f"{len(self.issues)} problems:\n" + "\n".join(f"  {i}" for i in self.issues)
        super().__init__(detail, extra={"issues": [asdict(i) for i in self.issues]})


class Spec(BaseModel):
    """Base of every spec model: unknown keys are mistakes and nothing is coerced silently."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def one_of(what: str, choices: Sequence[str]) -> Callable[[Any], Any]:
    """A before-validator naming the valid choices (`unknown risk 'hi' (expected one of ...)`)."""

    def check(value: Any) -> Any:
        if value not in choices:
            shown = repr(value) if isinstance(value, str) else describe_value(value)
            raise ValueError(f"unknown {what} {shown} (expected one of {', '.join(choices)})")
        return value

    return check


# --- values and paths ---------------------------------------------------------------------------

TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int in Python, never in a spec
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    ((list, tuple), "list"),
    (dict, "object"),
)


def type_name(value: object) -> str:
    """Name a value's type the way spec authors write types."""
    if value is None:
        return "null"
    return next(
        (name for kind, name in TYPE_NAMES if isinstance(value, kind)), type(value).__name__
    )


def describe_value(value: object, *, secret: bool = False) -> str:
    """`string '3'`, `integer 3`, `list`: a value as messages show it, never a secret's text."""
    if secret or not isinstance(value, str | int | float | bool):
        return type_name(value)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"{type_name(value)} {shown}"


def format_path(loc: Iterable[str | int], prefix: str = "") -> str:
    """`("stages", 1, "batch")` → `stages[1].batch`; pydantic's `[key]` markers are dropped."""
    out = prefix
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# --- YAML with line numbers ---------------------------------------------------------------------


class LineIndex:
    """The 1-based line of every key and list item of a YAML document, by path."""

    def __init__(self, lines: Mapping[Loc, int] | None = None) -> None:
        self.lines: dict[Loc, int] = dict(lines or {})

    def line_for(self, loc: Iterable[str | int]) -> int | None:
        """The line of `loc`, or of its nearest ancestor the document has (a missing key)."""
        parts = tuple(p for p in loc if p != "[key]")
        for end in range(len(parts), -1, -1):
            if (line := self.lines.get(parts[:end])) is not None:
                return line
        return None


class Origin:
    """Where a parsed spec came from: not part of what it says, so any two compare equal."""

    def __init__(self, index: LineIndex | None = None, source: str | None = None) -> None:
        self.index = index or LineIndex()
        self.source = source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Origin)

    def __hash__(self) -> int:
        return 0

    def locate(self, issues: Iterable[Issue]) -> list[Issue]:
        """Give issues found after parsing the line and file their path points to."""
        return [
            Issue(i.path, i.message, i.line or self.index.line_for(loc_of(i.path)), self.source)
            for i in issues
        ]


def loc_of(path: str) -> Loc:
    """Invert `format_path`: `a[1].b` → `("a", 1, "b")`."""
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path))


def load_yaml(text: str, *, source: str) -> tuple[Any, LineIndex]:
    """Safely load one YAML document with the line of each node; any problem is a SpecError."""
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        index, issues = _index(node, text) if node is not None else (LineIndex(), [])
        if issues:
            raise SpecError([Issue(i.path, i.message, i.line, source) for i in issues])
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise SpecError([Issue("", error_problem(exc), error_line(exc, text), source)]) from exc
    except RecursionError as exc:
        raise SpecError([Issue("", "invalid YAML: nested too deeply", None, source)]) from exc
    finally:
        loader.dispose()
    return data, index


def _index(root: yaml.Node, text: str) -> tuple[LineIndex, list[Issue]]:
    """Record lines, report duplicate keys, and refuse aliases that expand without bound."""
    index = LineIndex({(): root.start_mark.line + 1})
    issues: list[Issue] = []
    budget = [10 * len(text) + 10_000]
    sizes: dict[int, int] = {}

    def walk(node: yaml.Node, loc: Loc, on_path: frozenset[int]) -> int:
        if id(node) in on_path:
            raise _Refused("invalid YAML: an alias refers to a node that contains it")
        if id(node) in sizes:  # an alias: expands to its whole subtree again, indexed once
            budget[0] -= sizes[id(node)]
            if budget[0] < 0:
                raise _Refused("invalid YAML: aliases expand to far more data than the file holds")
            return sizes[id(node)]
        inner = on_path | {id(node)}
        children = _children(node, loc, index, issues)
        sizes[id(node)] = 1 + sum(walk(child, at, inner) for at, child in children)
        return sizes[id(node)]

    try:
        walk(root, (), frozenset())
    except _Refused as exc:
        return index, [Issue("", str(exc))]
    return index, issues


class _Refused(Exception):
    pass


def _children(
    node: yaml.Node, loc: Loc, index: LineIndex, issues: list[Issue]
) -> list[tuple[Loc, yaml.Node]]:
    """The child nodes with their paths; records their lines (a key's line for a mapping)."""
    out: list[tuple[Loc, yaml.Node]] = []
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index.lines.setdefault((*loc, i), item.start_mark.line + 1)
            out.append(((*loc, i), item))
    elif isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in sorted(node.value, key=lambda pair: _is_merge(pair[0])):
            if _is_merge(key):  # last, so the mapping's own keys keep their own lines
                out.append((loc, value))
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                issues.append(Issue(format_path((*loc, key.value)), "duplicate key", line))
            seen.add(key.value)
            index.lines.setdefault((*loc, key.value), line)
            out.append(((*loc, key.value), value))
    return out


def _is_merge(key: yaml.Node) -> bool:
    return not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge"


# --- pydantic errors as issues ------------------------------------------------------------------

_EXPECTED = {
    "int_type": "integer",
    "float_type": "number",
    "string_type": "string",
    "bool_type": "boolean",
    "list_type": "list",
    "dict_type": "mapping",
    "model_type": "mapping",
    "model_attributes_type": "mapping",
}


def validation_issues(
    exc: ValidationError,
    *,
    index: LineIndex | None = None,
    source: str | None = None,
    prefix: Loc = (),
) -> list[Issue]:
    """Turn pydantic's errors into issues with spec paths, plain messages and lines."""
    issues = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        line = index.line_for(loc) if index else None
        issues.append(Issue(format_path(loc), _message(err), line, source))
    return issues


def _message(err: ErrorDetails) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe_value(value)}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch":
        return f"invalid value {value!r} (expected to match {ctx.get('pattern')})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        word = {"greater_than_equal": "at least", "greater_than": "more than",
                "less_than_equal": "at most", "less_than": "less than"}[kind]  # fmt: skip
        limit = next(iter(ctx.values()), "?")
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)
        return f"must be {word} {limit}, got {value!r}"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
