"""Command templates: Jinja2 in a sandbox, with every interpolated value shell-quoted.

Operation authors are trusted; the values they interpolate (change parameters, host facts) are not.
So quoting is the default and opting out is explicit: `{{ service }}` renders `'nginx'`-safe text,
`{{ command|raw }}` renders as is. A parameter can never inject shell syntax (`; rm -rf /`, `$(id)`,
backticks, newlines) into a command whose template did not ask for raw text.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fleetops.changes.specs import Issue, SpecError

_VARIABLE = re.compile(r"^\{\{\s*([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)\s*\}\}$")
_UNDEFINED = (
    re.compile(r"^'(?P<name>[^']+)' is undefined$"),
    re.compile(r"has no attribute '(?P<name>[^']+)'$"),
)


class TemplateError(SpecError):
    """A template that cannot render; `line` and `column` point into the template text."""

    def __init__(
        self, problem: str, *, path: str = "template", line: int | None, column: int | None = None
    ) -> None:
        where = (
            "" if line is None else f" at line {line}" + (f", column {column}" if column else "")
        )
        super().__init__([Issue(path, f"{problem}{where}")])
        self.problem = problem
        self.line = line
        self.column = column


class Raw(str):
    """Text the `raw` filter marked: interpolated into a command without quoting."""

    __slots__ = ()


@dataclass(frozen=True)
class HostFacts:
    """What a template may know about the host it runs for."""

    hostname: str
    address: str = ""
    rack: str | None = None
    cluster: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


def operation_context(
    params: Mapping[str, Any], *, host: HostFacts, change_id: str | int, timeout: float
) -> dict[str, Any]:
    """Build what an operation's templates see: its params, `host`, `change` and `timeout`."""
    host_view = {
        "hostname": host.hostname,
        "address": host.address or host.hostname,
        "rack": host.rack,
        "cluster": host.cluster,
        "labels": dict(host.labels),
    }
    seconds = int(timeout) if float(timeout).is_integer() else timeout
    return {**params, "host": host_view, "change": {"id": change_id}, "timeout": seconds}


def render(
    template: str, context: Mapping[str, Any], *, shell: bool = True, path: str = "template"
) -> str:
    """Render a template; with `shell`, every `{{ value }}` is shell-quoted unless `|raw`."""
    env = _environment(shell)
    try:
        rendered = _bounded(env.from_string(template).generate(context))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_syntax(exc), path=path, line=exc.lineno) from exc
    except jinja2.UndefinedError as exc:
        raise _undefined(template, exc, path) from exc
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, MemoryError) as exc:
        raise TemplateError(f"cannot render: {exc}", path=path, line=None) from exc
    return rendered


def _bounded(chunks: Iterator[str]) -> str:
    """Join rendered chunks, stopping as soon as they pass MAX_RENDERED (a loop of big pieces
    must fail early, not after building all of them)."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDERED:
            raise ValueError(f"the rendered text passes the limit of {MAX_RENDERED} characters")
        out.append(chunk)
    return "".join(out)


def render_value(value: Any, context: Mapping[str, Any], *, path: str = "template") -> Any:
    """Render a parameter value for an operation or action: no quoting, types kept.

    A string that is exactly one `{{ name.attr }}` yields the referenced value itself, so an
    integer workflow parameter stays an integer for the operation's validation. Lists and
    mappings are rendered item by item; other values pass through.
    """
    if isinstance(value, str):
        if match := _VARIABLE.match(value.strip()):
            return _lookup(match.group(1), context, value, path)
        return render(value, context, shell=False, path=path) if is_template(value) else value
    if isinstance(value, list):
        return [render_value(item, context, path=f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {k: render_value(v, context, path=f"{path}.{k}") for k, v in value.items()}
    return value


def is_template(value: object) -> bool:
    """Whether a value holds template syntax (and so cannot be checked before rendering)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def variables(template: str, *, path: str = "template") -> set[str]:
    """The top-level names a template reads from its context (globals like `range` excluded)."""
    env = _environment(True)
    return meta.find_undeclared_variables(_parse(template, path)) - set(env.globals)


def attributes(template: str, name: str, *, path: str = "template") -> set[str]:
    """The attributes a template reads from one name: `{{ params.x }}` → `{"x"}` for `params`."""
    found: set[str] = set()
    tree = _parse(template, path)
    for attr in tree.find_all(nodes.Getattr):
        if isinstance(attr.node, nodes.Name) and attr.node.name == name:
            found.add(attr.attr)
    for item in tree.find_all(nodes.Getitem):
        if isinstance(item.node, nodes.Name) and item.node.name == name:
            if isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
                found.add(item.arg.value)
    return found


def raw_uses(template: str, *, path: str = "template") -> int:
    """How many values the template interpolates unquoted (`|raw`): command text from a value."""
    return sum(1 for f in _parse(template, path).find_all(nodes.Filter) if f.name == "raw")


def _parse(template: str, path: str) -> nodes.Template:
    try:
        return _environment(True).parse(template)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_syntax(exc), path=path, line=exc.lineno) from exc


# A rendered template (a command, a parameter value) is at most this long, and arithmetic in a
# template cannot build anything larger on the way: `{{ 'x' * 10**10 }}` must fail, not take the
# server's memory.
MAX_RENDERED = 1024 * 1024
MAX_EXPONENT_BITS = 4096


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with `*` and `**` checked before they allocate."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                if abs(left) > 1 and right * max(abs(left).bit_length(), 1) > MAX_EXPONENT_BITS:
                    raise ValueError(f"{left} ** {right} is too large for a template")
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * times > MAX_RENDERED:
                        raise ValueError(
                            f"repeating {len(seq)} items {times} times exceeds the template "
                            f"limit of {MAX_RENDERED} characters"
                        )
        return super().call_binop(context, operator, left, right)


@cache
def _environment(shell: bool) -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_shell_quote if shell else _plain,
    )
    env.filters["raw"] = _raw
    return env


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list | tuple):
        return " ".join(_plain(item) for item in value)
    return str(value)


def _shell_quote(value: Any) -> str:
    """Jinja's finalize hook: the one place an interpolated value becomes command text."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, list | tuple):  # one shell word per item: `rm -- {{ paths }}`
        return " ".join(shlex.quote(_plain(item)) for item in value)
    return shlex.quote(_plain(value))


def _raw(value: Any) -> Raw:
    return Raw(_plain(value))


def _lookup(dotted: str, context: Mapping[str, Any], template: str, path: str) -> Any:
    """Resolve `a.b.c` through mappings only: no attribute access, so nothing to sandbox."""
    first, *rest = dotted.split(".")
    if first not in context:
        raise _position(template, f"undefined variable {first!r}", first, path)
    value = context[first]
    for part in rest:
        if not isinstance(value, Mapping) or part not in value:
            raise _position(template, f"undefined attribute {part!r}", part, path)
        value = value[part]
    return value


def _undefined(template: str, exc: jinja2.UndefinedError, path: str) -> TemplateError:
    message = str(exc.message or exc)
    for pattern in _UNDEFINED:
        if match := pattern.search(message):
            name = match.group("name")
            kind = "variable" if pattern is _UNDEFINED[0] else "attribute"
            return _position(template, f"undefined {kind} {name!r}", name, path)
    return TemplateError(message, path=path, line=None)


def _position(template: str, problem: str, name: str, path: str) -> TemplateError:
    """Point at the first use of `name` inside a `{{ }}` or `{% %}` block."""
    word = re.compile(rf"(?<![\w.]){re.escape(name)}\b|(?<=\.){re.escape(name)}\b")
    for block in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", template, re.DOTALL):
        if match := word.search(template, block.start(), block.end()):
            line = template.count("\n", 0, match.start()) + 1
            column = match.start() - (template.rfind("\n", 0, match.start()) + 1) + 1
            return TemplateError(problem, path=path, line=line, column=column)
    return TemplateError(problem, path=path, line=None)


def _syntax(exc: jinja2.TemplateSyntaxError) -> str:
    return f"template syntax: {(exc.message or 'invalid').rstrip('.')}"
