"""Target selectors: the one small language every feature uses to pick hosts.

A selector such as `(rack=r01 or rack=r02) and label:role=datanode except dn-00[1-3]` parses into an
immutable AST (`parse`), prints back canonically (`describe`, for audit records) and compiles to one
SQL boolean over `Host` (`to_clause`), so it means the same in the CLI, the API and every change.
Retired hosts are never picked unless a selector names them (`state=retired`).

Grammar, loosest first (`,` is an AND that binds tighter than `and`/`except`, looser than `not`):

    expr    := conj_and ("or" conj_and)*
    conj_and:= conj (("and" | "except") conj)*
    conj    := unary ("," unary)*
    unary   := "not" unary | "(" expr ")" | "all" | "*" | term | pattern
    term    := key ("=" | "!=") value ("|" value)*

Values and patterns may hold `*`/`?` globs and `[01-40]` / `[a,b]` brackets (expanded in Python).
Keywords and keys are case-insensitive; values are matched case-sensitively on every backend.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeAlias, assert_never

from pydantic import Field
from sqlalchemy import Boolean, Select, and_, bindparam, exists, not_, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from fleetops.devices.enums import Lifecycle
from fleetops.errors import AppError
from fleetops.kit.nul import TEXT_PATTERN
from fleetops.models.inventory import (
    Cluster,
    Datacenter,
    HardwareModel,
    Host,
    HostGroup,
    HostLabel,
    Rack,
    Region,
)

MAX_LENGTH = 4096
MAX_NAMES = 100_000
KEYS = ("host", "address", "cluster", "rack", "datacenter", "region", "model", "state", "group")
ALIASES = {"hostname": "host", "dc": "datacenter", "sku": "model"}
# How an API field holding a selector is documented. JSON Schema cannot state the grammar, so the
# field names it as a format (a generator that knows it produces valid selectors) and states what
# it can: not blank, at most MAX_LENGTH characters. A grammatical error is a 400 `SelectorError`.
SELECTOR_DOC = (
    "a host selector (docs/selectors.md), e.g. `cluster=c1,rack=r07` or `dn-0[01-40] except "
    "label:role=namenode`; 400 SelectorError when it does not parse"
)
# (`pattern` repeated: pydantic drops it from an optional field's schema.)
SELECTOR_SCHEMA: dict[str, Any] = {"format": "selector", "pattern": TEXT_PATTERN}
# The constraints of a selector field, for `Field(**...)` and FastAPI's `Query(**...)` alike.
SELECTOR_FIELD: dict[str, Any] = {
    "min_length": 1,
    "max_length": MAX_LENGTH,
    "pattern": TEXT_PATTERN,
    "description": SELECTOR_DOC,
    "json_schema_extra": SELECTOR_SCHEMA,
}
SelectorText = Annotated[str, Field(**SELECTOR_FIELD)]
RETIRED = Lifecycle.RETIRED  # the lifecycle's final state: hosts kept only for their history
_OPERATORS = frozenset({"and", "or", "except", "not"})
_LABEL_KEY = re.compile(r"[A-Za-z0-9._/-]+")
_NUMBER_RANGE = re.compile(r"(\d+)-(\d+)")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
# Longer IN lists are inlined: SQLite and psycopg cap the bound parameters of a statement.
_MAX_BOUND_NAMES = 1000


class SelectorError(AppError):
    """A selector that cannot be parsed; `column` (1-based) points at the problem."""

    status_code = 400

    def __init__(self, problem: str, *, column: int) -> None:
        super().__init__(f"selector error at column {column}: {problem}", extra={"column": column})
        self.problem = problem
        self.column = column


# --- AST -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """`key op value|value...`; `key` is canonical (aliases resolved), values unexpanded."""

    key: str
    op: Literal["=", "!="]
    values: tuple[str, ...]


@dataclass(frozen=True)
class HostPattern:
    """A bare word: matches a hostname or an address."""

    pattern: str


@dataclass(frozen=True)
class All:
    pass


@dataclass(frozen=True)
class Not:
    node: Node


@dataclass(frozen=True)
class _Binary:
    left: Node
    right: Node


class And(_Binary):
    """Hosts in both (`and`, or `,` inside a clause)."""


class Or(_Binary):
    """Hosts in either."""


class Except(_Binary):
    """Hosts in `left` but not in `right`."""


Node: TypeAlias = Term | HostPattern | All | Not | And | Or | Except


# --- brackets --------------------------------------------------------------------------------

# One bracket's items: a literal word, or a number range with its zero-padding width.
_Part: TypeAlias = tuple[str | tuple[range, int], ...]


def _split(pattern: str, column: int) -> list[_Part]:
    """Cut `pattern` into literal text and bracket parts; `column` is where it starts."""
    if stray := re.search(r"[\[\]]", _BRACKET.sub(lambda m: " " * len(m[0]), pattern)):
        raise SelectorError(f"unbalanced '{stray[0]}'", column=column + stray.start())
    parts: list[_Part] = []
    pos = 0
    for match in _BRACKET.finditer(pattern):
        parts += [(pattern[pos : match.start()],), _bracket(match[1], column + match.start())]
        pos = match.end()
    return [*parts, (pattern[pos:],)]


def _bracket(body: str, column: int) -> _Part:
    items: list[str | tuple[range, int]] = []
    for item in body.split(","):
        if match := _NUMBER_RANGE.fullmatch(item):
            low, high = match.groups()
            if int(low) > int(high):
                problem = f"bad range [{item}]: start {low} is greater than end {high}"
                raise SelectorError(problem, column=column)
            # `[01-40]` pads to two digits, `[8-11]` does not pad: the lower bound says which.
            width = len(low) if low.startswith("0") else 1
            items.append((range(int(low), int(high) + 1), width))
        elif item and "-" not in item and not any(ch.isspace() for ch in item):
            items.append(item)
        else:
            problem = f"bad item '{item}' in [{body}]: expected a number range N-M or a word"
            raise SelectorError(problem, column=column)
    return tuple(items)


def _count(parts: Sequence[_Part]) -> int:
    return math.prod(sum(len(i[0]) if isinstance(i, tuple) else 1 for i in part) for part in parts)


def _choices(part: _Part) -> Iterator[str]:
    for item in part:
        if isinstance(item, str):
            yield item
        else:
            numbers, width = item
            yield from (str(n).zfill(width) for n in numbers)


def expand_ranges(pattern: str) -> list[str]:
    """Expand `[01-40]` and `[a,b]` brackets (cross product, in order); globs stay as they are."""
    parts = _split(pattern, 1)
    if _count(parts) > MAX_NAMES:
        raise SelectorError(f"'{pattern}' expands to more than {MAX_NAMES:,} names", column=1)
    return ["".join(names) for names in itertools.product(*map(_choices, parts))]


# --- tokenizer and parser --------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "(", ")", ",", "|", "=", "!=" or "end"
    text: str
    column: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text.startswith("!=", i):
            tokens.append(_Token("!=", "!=", i + 1))
            i += 2
        elif text[i] in "(),|=":
            tokens.append(_Token(text[i], text[i], i + 1))
            i += 1
        elif text[i] == "!":
            raise SelectorError("expected '!=' after '!'", column=i + 1)
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in "(),|=!":
                if text[i] == "[":  # a bracket may hold commas: `dn-[1,3]`
                    close = text.find("]", i)
                    if close < 0:
                        raise SelectorError("'[' is never closed", column=i + 1)
                    i = close
                i += 1
            tokens.append(_Token("word", text[start:i], start + 1))
    return [*tokens, _Token("end", "", len(text) + 1)]


class _Parser:
    """Recursive descent over the tokens, one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.names = 0  # names the whole selector expands to, bounded by MAX_NAMES

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def accept(self, kind: str) -> bool:
        if self.peek().kind == kind:
            self.take()
            return True
        return False

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token.kind == "word" and token.text.lower() in words:
            self.take()
            return token.text.lower()
        return None

    def expected(self, what: str, token: _Token) -> SelectorError:
        found = "end of selector" if token.kind == "end" else f"'{token.text}'"
        index = self.tokens.index(token)
        after = f" after '{self.tokens[index - 1].text}'" if index > 0 else ""
        return SelectorError(f"expected {what}{after}, found {found}", column=token.column)

    def expr(self) -> Node:
        node = self.conj_and()
        while self.keyword("or"):
            node = Or(node, self.conj_and())
        return node

    def conj_and(self) -> Node:
        node = self.conj()
        while word := self.keyword("and", "except"):
            right = self.conj()
            node = And(node, right) if word == "and" else Except(node, right)
        return node

    def conj(self) -> Node:
        node = self.unary()
        while self.accept(","):
            node = And(node, self.unary())
        return node

    def unary(self) -> Node:
        if self.keyword("not"):
            return Not(self.unary())
        token = self.take()
        if token.kind == "(":
            node = self.expr()
            if not self.accept(")"):
                raise self.expected(f"')' to close '(' at column {token.column}", self.peek())
            return node
        if token.kind != "word" or token.text.lower() in _OPERATORS:
            raise self.expected("a term, a host pattern, 'not' or '('", token)
        if self.peek().kind in ("=", "!="):
            return self.term(token)
        if token.text == "*" or token.text.lower() == "all":
            return All()
        if token.text[:6].lower() == "label:":  # no host is named so: a forgotten `=value`
            raise self.expected("'=' or '!='", self.peek())
        return HostPattern(self.pattern(token))

    def term(self, key: _Token) -> Term:
        name = _canonical_key(key.text, key.column)
        op: Literal["=", "!="] = "=" if self.take().kind == "=" else "!="
        values = [self.value()]
        while self.accept("|"):
            values.append(self.value())
        return Term(name, op, tuple(values))

    def value(self) -> str:
        token = self.take()
        if token.kind != "word":
            raise self.expected("a value", token)
        return self.pattern(token)

    def pattern(self, token: _Token) -> str:
        self.names += _count(_split(token.text, token.column))
        if self.names > MAX_NAMES:
            problem = f"selector expands to more than {MAX_NAMES:,} names"
            raise SelectorError(problem, column=token.column)
        return token.text


def _canonical_key(text: str, column: int) -> str:
    if text[:6].lower() == "label:":
        if not _LABEL_KEY.fullmatch(text[6:]):
            problem = f"bad label key '{text[6:]}' (letters, digits and ._/- only)"
            raise SelectorError(problem, column=column + 6)
        return "label:" + text[6:]
    key = ALIASES.get(text.lower(), text.lower())
    if key not in KEYS:
        known = ", ".join((*KEYS, "label:<key>"))
        raise SelectorError(f"unknown key '{text}' (known: {known})", column=column)
    return key


def parse(text: str) -> Node:
    """Parse a selector; every mistake is a SelectorError, never a selector that matches nothing."""
    if len(text) > MAX_LENGTH:
        problem = f"selector is {len(text)} characters long; the limit is {MAX_LENGTH}"
        raise SelectorError(problem, column=MAX_LENGTH + 1)
    if not text.strip():
        raise SelectorError("empty selector; write 'all' or '*' to select every host", column=1)
    parser = _Parser(text)
    node = parser.expr()
    token = parser.peek()
    if token.kind == ")":
        raise SelectorError("unbalanced ')' with no '(' to close", column=token.column)
    if token.kind != "end":
        raise parser.expected("',', 'and', 'or', 'except' or the end", token)
    return node


def describe(node: Node) -> str:
    """Render `node` canonically, with the fewest parentheses, so that `parse` gives it back."""
    return _describe(node, 0)


def _describe(node: Node, context: int) -> str:
    # Binding strength: or 1, and/except 2, not 3, atoms 4; parenthesise what binds looser.
    match node:
        case All():
            text, strength = "all", 4
        case HostPattern(pattern):
            text, strength = pattern, 4
        case Term(key, op, values):
            text, strength = f"{key}{op}{'|'.join(values)}", 4
        case Not(inner):
            text, strength = f"not {_describe(inner, 3)}", 3
        case And(left, right) | Except(left, right):
            word = "and" if isinstance(node, And) else "except"
            text, strength = f"{_describe(left, 2)} {word} {_describe(right, 3)}", 2
        case Or(left, right):
            text, strength = f"{_describe(left, 1)} or {_describe(right, 2)}", 1
        case _:
            assert_never(node)
    return f"({text})" if strength < context else text


# --- SQL -------------------------------------------------------------------------------------


class _GlobMatch(ColumnElement[bool]):
    """`column` matches a `*`/`?` glob case-sensitively on every backend.

    PostgreSQL gets `LIKE ... ESCAPE`; SQLite gets `GLOB`, because its LIKE ignores ASCII case and
    `dn-*` would match `DN-1` there only. Expanded values hold no brackets: GLOB takes them as is.
    """

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True
    # SQLAlchemy builds the statement cache key from these; the list is never mutated.
    _traverse_internals: list[tuple[str, InternalTraversal]] = [  # noqa: RUF012
        ("like_clause", InternalTraversal.dp_clauseelement),
        ("glob_clause", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: InstrumentedAttribute[str], pattern: str) -> None:
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        self.like_clause = column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")
        self.glob_clause = column.op("GLOB", is_comparison=True)(pattern)


@compiles(_GlobMatch)
def _compile_like(element: _GlobMatch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.like_clause, **kw)})"


@compiles(_GlobMatch, "sqlite")
def _compile_glob(element: _GlobMatch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.glob_clause, **kw)})"


def _is_glob(name: str) -> bool:
    return "*" in name or "?" in name


def _match(column: InstrumentedAttribute[str], values: Sequence[str]) -> ColumnElement[bool]:
    """`column` equals one of the expanded names (`=`/`IN`) or matches one of the globs."""
    names = [name for value in values for name in expand_ranges(value)]
    exact = [name for name in names if not _is_glob(name)]
    clauses: list[ColumnElement[bool]] = [_GlobMatch(column, n) for n in names if _is_glob(n)]
    if len(exact) == 1:
        clauses.insert(0, column == exact[0])
    elif 1 < len(exact) <= _MAX_BOUND_NAMES:
        clauses.insert(0, column.in_(exact))
    elif exact:
        clauses.insert(0, column.in_(bindparam(None, exact, expanding=True, literal_execute=True)))
    return or_(*clauses)


def _through(fk: InstrumentedAttribute[int | None], ids: Select[int]) -> ColumnElement[bool]:
    # The NULL check keeps the clause two-valued, so `not`/`!=` also pick hosts with no such row.
    return and_(fk.is_not(None), fk.in_(ids))


def _term(term: Term) -> ColumnElement[bool]:
    """The clause for `key=values`; `!=` is its negation."""
    values = term.values
    if term.key.startswith("label:"):
        key = term.key.removeprefix("label:")
        labelled = HostLabel.host_id == Host.id, HostLabel.key == key
        return exists().where(*labelled, _match(HostLabel.value, values))
    match term.key:
        case "host":
            return _match(Host.hostname, values)
        case "address":
            return _match(Host.address, values)
        case "state":
            return _match(Host.state, values)
        case "cluster":
            return _through(Host.cluster_id, select(Cluster.id).where(_match(Cluster.name, values)))
        case "rack":
            return _through(Host.rack_id, select(Rack.id).where(_match(Rack.name, values)))
        case "model":
            models = select(HardwareModel.id).where(_match(HardwareModel.name, values))
            return _through(Host.model_id, models)
        case "datacenter":
            racks = select(Rack.id).join(Datacenter, Rack.datacenter_id == Datacenter.id)
            return _through(Host.rack_id, racks.where(_match(Datacenter.name, values)))
        case "region":
            racks = (
                select(Rack.id)
                .join(Datacenter, Rack.datacenter_id == Datacenter.id)
                .join(Region, Datacenter.region_id == Region.id)
            )
            return _through(Host.rack_id, racks.where(_match(Region.name, values)))
        case "group":
            member = HostGroup.host_id == Host.id
            return exists().where(member, _match(HostGroup.name, values))
    raise SelectorError(f"unknown key '{term.key}'", column=1)


def names_retired(node: Node) -> bool:
    """Whether the selector asks for retired hosts by name: a `state=retired` term anywhere."""
    match node:
        case Term(key="state", values=values):
            return any(RETIRED in expand_ranges(value) for value in values)
        case Not(inner):
            return names_retired(inner)
        case And(left, right) | Or(left, right) | Except(left, right):
            return names_retired(left) or names_retired(right)
        case _:
            return False


def to_clause(node: Node, *, include_retired: bool = False) -> ColumnElement[bool]:
    """Compile a selector to one boolean over `Host` that never evaluates to NULL.

    Retired hosts are kept for their history, not for work: they are left out unless the selector
    names them (`state=retired`) or the caller asks for them."""
    clause = _clause(node)
    if include_retired or names_retired(node):
        return clause
    return and_(clause, Host.state != RETIRED)


def _clause(node: Node) -> ColumnElement[bool]:
    match node:
        case All():
            return true()
        case HostPattern(pattern):
            return or_(_match(Host.hostname, [pattern]), _match(Host.address, [pattern]))
        case Term(op=op):
            return _term(node) if op == "=" else not_(_term(node))
        case Not(inner):
            return not_(_clause(inner))
        case And(left, right):
            return and_(_clause(left), _clause(right))
        case Or(left, right):
            return or_(_clause(left), _clause(right))
        case Except(left, right):
            return and_(_clause(left), not_(_clause(right)))
        case _:
            assert_never(node)


def select_hosts(node_or_text: Node | str) -> Select[Host]:
    """The hosts a selector picks, ordered by hostname."""
    node = parse(node_or_text) if isinstance(node_or_text, str) else node_or_text
    return select(Host).where(to_clause(node)).order_by(Host.hostname)
