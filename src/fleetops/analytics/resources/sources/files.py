"""Data files read strictly by DuckDB; a file it refuses is scanned by Python for its bad line.

Three shapes: CSV without a header (fields by position, exact count), CSV with a header (fields
by name, other columns ignored) and JSON lines (fields by name, `a.b` inside nested objects; a
number may be a string, as BigQuery exports 64-bit integers). DuckDB is the fast path for the good
case; the scan gives the exact message for the bad one (`batch_instance.csv line 7: cpu_avg 'x':
not a number`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import duckdb

from fleetops.analytics.resources.exceptions import TraceError

NUMBER = r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?"


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a data file: its name there, its type, and what it may hold.

    `kind` is DOUBLE, BIGINT, VARCHAR or TIME (ISO 8601 or epoch seconds, read as epoch seconds).
    """

    name: str
    kind: str = "VARCHAR"
    non_negative: bool = False
    optional: bool = False

    @property
    def column(self) -> str:
        return self.name.replace(".", "_")

    @property
    def stored(self) -> str:
        """The column's type in the loaded table."""
        return "DOUBLE" if self.kind == "TIME" else self.kind

    @property
    def raw(self) -> str:
        """The type DuckDB reads the field as (a time is parsed afterwards)."""
        return "VARCHAR" if self.kind == "TIME" else self.kind


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def opened(path: Path) -> IO[str]:
    """The file as text, gunzipped if its name ends in .gz."""
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def first_record(path: Path) -> list[str]:
    """The first CSV record of a file (its header, or its first row); [] when empty."""
    try:
        with opened(path) as text:
            return next(csv.reader(text), [])
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise TraceError(f"unreadable: {exc}", where=path.name) from None


def create(db: duckdb.DuckDBPyConnection, table: str, fields: Sequence[Field]) -> None:
    columns = ", ".join(f"{ident(f.column)} {f.stored}" for f in fields)
    db.execute(f"create or replace temp table {table} ({columns})")


def read_csv(
    db: duckdb.DuckDBPyConnection,
    table: str,
    paths: Sequence[Path],
    fields: Sequence[Field],
    *,
    header: bool,
) -> None:
    """Create `table` and append every file to it (see `append_csv`)."""
    create(db, table, fields)
    append_csv(db, table, paths, fields, header=header)


def append_csv(
    db: duckdb.DuckDBPyConnection,
    table: str,
    paths: Sequence[Path],
    fields: Sequence[Field],
    *,
    header: bool,
) -> None:
    """Append every CSV file to `table`; a refused file is scanned for its bad line."""
    for path in paths:
        names = _header(path, fields) if header else [f.column for f in fields]
        kinds = {f.name: f.raw for f in fields}
        types = ", ".join(f"{literal(n)}: '{kinds.get(n, 'VARCHAR')}'" for n in names)
        source = (
            f"read_csv({literal(str(path))}, header = {str(header).lower()}, "
            f"auto_detect = false, columns = {{{types}}}, delim = ',', quote = '\"', "
            "strict_mode = true, null_padding = false)"
        )
        exprs = [_expr(f, ident(f.name) if f.name in names else None) for f in fields]
        _insert(db, table, source, exprs, fields, lambda p=path: scan_csv(p, fields, header))


def append_jsonl(
    db: duckdb.DuckDBPyConnection, table: str, paths: Sequence[Path], fields: Sequence[Field]
) -> None:
    """Append every JSON-lines file to `table`, fields by (dotted) name."""
    tops: dict[str, dict[str, str] | str] = {}
    for f in fields:
        top, _, sub = f.name.partition(".")
        kind = f.raw
        if sub:
            nested = tops.setdefault(top, {})
            assert isinstance(nested, dict)
            nested[sub] = kind
        else:
            tops[top] = kind
    types = ", ".join(
        f"{literal(top)}: "
        + (
            literal("STRUCT(" + ", ".join(f"{ident(k)} {v}" for k, v in kind.items()) + ")")
            if isinstance(kind, dict)
            else literal(kind)
        )
        for top, kind in tops.items()
    )
    for path in paths:
        source = (
            f"read_json({literal(str(path))}, format = 'newline_delimited', columns = {{{types}}})"
        )
        exprs = []
        for f in fields:
            top, _, sub = f.name.partition(".")
            reference = f"struct_extract({ident(top)}, {literal(sub)})" if sub else ident(top)
            exprs.append(_expr(f, reference))
        _insert(db, table, source, exprs, fields, lambda p=path: scan_jsonl(p, fields))


def _header(path: Path, fields: Sequence[Field]) -> list[str]:
    names = first_record(path)
    if not names:
        raise TraceError("empty: no header", where=path.name)
    seen = set()
    for name in names:
        if name in seen:
            raise TraceError(f"column {name!r} twice in the header", where=f"{path.name} line 1")
        seen.add(name)
    for f in fields:
        if not f.optional and f.name not in seen:
            raise TraceError(f"no column {f.name!r}", where=f"{path.name} line 1")
    return names


def _expr(f: Field, reference: str | None) -> str:
    if reference is None:
        return f"null::{f.stored} as {ident(f.column)}"
    if f.kind != "TIME":
        return f"{reference} as {ident(f.column)}"
    text = f"trim({reference})"
    return (
        f"case when regexp_full_match({text}, '{NUMBER}') then {text}::double "
        f"else epoch(try_cast({text} as timestamptz)) end as {ident(f.column)}"
    )


def _insert(
    db: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    exprs: list[str],
    fields: Sequence[Field],
    scan: Any,
) -> None:
    bad = [f"{ident(f.column)} < 0" for f in fields if f.non_negative]
    bad += [f"{ident(f.column)} is null" for f in fields if not f.optional]
    bad += [f"not isfinite({ident(f.column)})" for f in fields if f.stored == "DOUBLE"]
    check = " or ".join(bad) or "false"
    try:
        db.execute(
            f"insert into {table} select * from (select {', '.join(exprs)} from {source}) "
            f"where case when {check} then error('a row out of range') else true end"
        )
    except duckdb.Error as exc:
        raise scan() or TraceError(f"cannot read: {exc}", where=_name(source)) from None


def _name(source: str) -> str:
    return Path(source.split("'")[1]).name


def scan_csv(path: Path, fields: Sequence[Field], header: bool) -> TraceError | None:
    """The first malformed row of a CSV file, as an error naming the file and line."""
    try:
        with opened(path) as text:
            rows = enumerate(csv.reader(text), start=1)
            positions: dict[str, int] = {f.name: i for i, f in enumerate(fields)}
            expected = len(fields)
            if header:
                _, names = next(rows, (1, []))
                positions = {n: i for i, n in enumerate(names)}
                expected = len(names)
            for number, values in rows:
                where = f"{path.name} line {number}"
                if len(values) != expected:
                    return TraceError(f"{len(values)} fields, expected {expected}", where=where)
                for f in fields:
                    at = positions.get(f.name)
                    problem = problem_of(f, None if at is None else values[at])
                    if problem:
                        return TraceError(problem, where=where)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        return TraceError(f"unreadable: {exc}", where=path.name)
    return None


def scan_jsonl(path: Path, fields: Sequence[Field]) -> TraceError | None:
    """The first malformed line of a JSON-lines file, as an error naming the file and line."""
    try:
        for number, line in _lines(path):
            where = f"{path.name} line {number}"
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                return TraceError(f"not JSON: {exc}", where=where)
            if not isinstance(record, dict):
                return TraceError("not a JSON object", where=where)
            for f in fields:
                problem = problem_of(f, _lookup(record, f.name))
                if problem:
                    return TraceError(problem, where=where)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        return TraceError(f"unreadable: {exc}", where=path.name)
    return None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with opened(path) as text:
        yield from enumerate(text, start=1)


def _lookup(record: dict[str, Any], name: str) -> Any:
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def problem_of(f: Field, value: Any) -> str | None:
    """What is wrong with one value of field `f` (text from CSV, any JSON value); None if fine."""
    if value is None or value == "":
        if f.optional:
            return None
        return f"no {f.name}" if value is None else f"{f.name} '': empty"
    if f.kind == "VARCHAR":
        return None
    shown = f"{f.name} {value!r}"
    if f.kind == "TIME":
        return None if _time(str(value)) else f"{shown}: not ISO 8601 or epoch seconds"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"{shown}: not a number"
    try:
        number = int(value) if f.kind == "BIGINT" else float(value)
    except ValueError:
        return f"{shown}: not {'an integer' if f.kind == 'BIGINT' else 'a number'}"
    if not math.isfinite(number):
        return f"{shown}: not a finite number"
    if f.non_negative and number < 0:
        return f"{shown}: negative"
    return None


def _time(text: str) -> bool:
    text = text.strip()
    try:
        return math.isfinite(float(text))
    except ValueError:
        pass
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
