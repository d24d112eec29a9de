"""Generic listings (CSV with a header, Parquet) copied into entries by DuckDB: the fast path.

`listings.read_csv` and `read_parquet` go a row at a time in Python (a million CSV rows in 14 s);
DuckDB parses, converts and writes Parquet on every core, spilling to disk where memory runs
short. The SQL here accepts only what the Python readers accept, and gives the same values: the
same column rules, paths, kinds and defaults, and times converted the way `datetime` does
(epoch seconds rounded half-even to the microsecond, then floored to the millisecond).

It does not name a bad row: any row it cannot vouch for (a bad number, a relative path, an
unknown kind, a time in a form it does not know, a wrong number of fields, text that is not
UTF-8) stops the copy, the partial file is removed, and `copy_listing` answers None. The caller
then reads the file with the Python reader, which raises the InputError naming the line and
column, or reads it whole where the SQL was only stricter than Python (a tab around a kind, an
integer written `1_000`): the fast path for the good case, the exact message for the bad one.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from fleetops.analytics.storage.listings import OPTIONAL, REQUIRED, ListingSummary

MEMORY_LIMIT = "2GB"  # DuckDB's own; with Python and the Parquet writer the process stays < 4 GB
_ROW_GROUP = 122_880

# What DuckDB may read from a Parquet listing, per column: where the Python reader would turn a
# value of another type into something else (a float size truncated, a date as text), the fast
# path declines and the Python reader decides.
_INTEGERS = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
)
_TIMESTAMPS = frozenset({"TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"})
_ACCEPTED = {
    "path": frozenset({"VARCHAR"}),
    "kind": frozenset({"VARCHAR"}),
    "owner": _INTEGERS | {"VARCHAR"},
    "group": _INTEGERS | {"VARCHAR"},
    "size": _INTEGERS | {"VARCHAR"},
    "replication": _INTEGERS | {"VARCHAR"},
    "blocks": _INTEGERS | {"VARCHAR"},
    "mtime": _INTEGERS | _TIMESTAMPS | {"VARCHAR", "FLOAT", "DOUBLE"},
    "atime": _INTEGERS | _TIMESTAMPS | {"VARCHAR", "FLOAT", "DOUBLE"},
}

# Epoch numbers as `listings._time` takes them: digits with at most one '.', no sign.
_EPOCH = r"[0-9]+(\.[0-9]*)?|\.[0-9]+"
# ISO 8601 as both `datetime.fromisoformat` and DuckDB read it, to the same instant.
_ISO = (
    r"[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?)?"
)
_WHOLE = r" *[+-]?[0-9]+ *"
# datetime's range, in microseconds since the epoch: years 1000 to 9999
_LOW_US, _HIGH_US = -30_610_224_000_000_000, 253_402_300_800_000_000

# A time becomes milliseconds in stages, each a column of its own (DuckDB would evaluate a
# macro's argument once per use): the text trimmed (`_t`); it read as epoch seconds or
# milliseconds (`_d`), or else as ISO 8601, in microseconds (`_z`); seconds (`_s`), whole part
# (`_w`); microseconds as `datetime.fromtimestamp` rounds them, half to even (`_us`).
_TIME_STAGES = (
    "case when abs({c}_d) >= 1e11 then {c}_d / 1000 else {c}_d end as {c}_s",
    "trunc({c}_s) as {c}_w",
    "coalesce(case when isfinite({c}_s) and abs({c}_s) < 1e12 then {c}_w::bigint * 1000000"
    " + round_even(({c}_s - {c}_w) * 1e6, 0)::bigint end, {c}_z) as {c}_us",
)
MACROS = f"""
create temp macro floor_div(a, b) as (a - ((a % b) + b) % b) // b;
create temp macro ms_of_us(us) as
  case when us >= {_LOW_US} and us < {_HIGH_US} then floor_div(us, 1000) end;
create temp macro kind_of_text(x) as case
  when x is null or x = '' or x = 'file' then 'file' when x = 'dir' then 'dir'
  when x = 'symlink' then 'symlink'
  else case lower(trim(x)) when 'file' then 'file' when 'dir' then 'dir'
    when 'directory' then 'dir' when 'symlink' then 'symlink' end
end;
"""


def copy_listing(path: Path, out: Path, *, kind: str) -> ListingSummary | None:
    """Copy the CSV or Parquet listing at `path` into entries at `out` with DuckDB; None (and
    nothing at `out`) where it cannot vouch for every row, for the Python reader to decide."""
    try:
        with _connection(out) as db:
            source = _csv_source(path) if kind == "csv" else _parquet_source(db, path)
            if source is None:
                return None
            db.execute(_copy_sql(source, out))
            return summarize(db, out, kind=kind)
    except duckdb.Error:
        out.unlink(missing_ok=True)
        return None
    except BaseException:
        out.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _connection(out: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB bounded in memory, spilling beside `out`, on every core, rows in any order."""
    spill = out.parent / f".{out.name}.spill"
    db = duckdb.connect()
    try:
        db.execute("set timezone = 'UTC'")
        db.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
        db.execute(f"set threads = {os.cpu_count() or 1}")
        db.execute(f"set temp_directory = {_literal(str(spill))}")
        db.execute("set preserve_insertion_order = false")
        db.execute(MACROS)
        yield db
    finally:
        db.close()
        shutil.rmtree(spill, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class Source:
    """A listing as DuckDB reads it: the table expression, and for each of REQUIRED + OPTIONAL
    present, its column's name and DuckDB type; in CSV an empty field is NULL."""

    table: str
    columns: dict[str, tuple[str, str]]
    csv: bool


def _csv_source(path: Path) -> Source | None:
    """The CSV's header read as `listings.read_csv` reads it; every field text to DuckDB, a row
    with another number of fields an error (strict mode, no padding), and a line longer than
    the csv module's longest field (stricter than csv, which limits each field)."""
    header = _csv_header(path)
    positions = None if header is None else column_positions(header)
    if header is None or positions is None:
        return None
    types = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header)))
    table = (
        f"read_csv({_literal(str(path))}, header = true, auto_detect = false, "
        f"columns = {{{types}}}, delim = ',', quote = '\"', escape = '\"', "
        "strict_mode = true, null_padding = false, encoding = 'utf-8', "
        f"max_line_size = {csv.field_size_limit()})"  # a longer field is an error to csv
    )
    columns = {name: (f"c{i}", "VARCHAR") for name, i in positions.items()}
    return Source(table, columns, csv=True)


def _csv_header(path: Path) -> list[str] | None:
    try:
        with path.open(encoding="utf-8", newline="") as text:
            return next(csv.reader(text), None)
    except (UnicodeDecodeError, csv.Error):
        return None


def _parquet_source(db: duckdb.DuckDBPyConnection, path: Path) -> Source | None:
    """The Parquet listing's columns, where each has a type the SQL converts as Python would."""
    table = f"read_parquet({_literal(str(path))})"
    described = db.execute(f"describe select * from {table}").fetchall()
    names = [str(row[0]) for row in described]
    positions = column_positions(names)
    if positions is None or len(set(names)) != len(names):
        return None
    columns = {name: (names[i], str(described[i][1])) for name, i in positions.items()}
    if any(kind not in _ACCEPTED[name] for name, (_, kind) in columns.items()):
        return None
    return Source(table, columns, csv=False)


def column_positions(header: Sequence[str]) -> dict[str, int] | None:
    """Where each of REQUIRED + OPTIONAL is in the header, as `listings` finds them (names
    stripped, any case, the first of a name); None if a required one is missing."""
    names = [name.strip().lower() for name in header]
    if any(name not in names for name in REQUIRED):
        return None
    return {name: names.index(name) for name in REQUIRED + OPTIONAL if name in names}


_TYPES = {"size": "bigint", "replication": "smallint", "blocks": "integer"}
_DEFAULTS = {"kind": "'file'", "replication": "1", "blocks": "0"}
_VALUES = ("path", "kind", "size", "replication", "blocks", "owner", "group")
_TIMES = ("mtime", "atime")
_OUTPUT = {
    "replication": "replication::smallint",
    "blocks": "blocks::integer",
    "mtime": "epoch_ms(ms_of_us(mtime_us))::timestamp_ms",
    "atime": "epoch_ms(ms_of_us(atime_us))::timestamp_ms",
}


def _value(name: str, source: Source) -> str:
    """The SQL for one entry column from the listing's column (text or native), as
    `listings._listing_entry` converts it; NULL where Python would refuse the value."""
    if name not in source.columns:
        return _DEFAULTS[name]
    column, kind = source.columns[name]
    x = _identifier(column)
    if name == "path":
        return (
            f"case when not starts_with({x}, '/') then null when ends_with({x}, '/') "
            f"then coalesce(nullif(rtrim({x}, '/'), ''), '/') else {x} end"
        )
    if name == "kind":
        return f"kind_of_text({x})"
    if name in ("owner", "group"):
        return f"coalesce({x}, '')" if source.csv else f"{x}::varchar"
    default = _DEFAULTS.get(name, "null")
    if kind == "VARCHAR":
        return (
            f"case when {x} is null or {x} = '' then {default} "
            f"when regexp_full_match({x}, '{_WHOLE}') then try_cast({x} as {_TYPES[name]}) end"
        )
    return f"case when {x} is null then {default} else try_cast({x} as {_TYPES[name]}) end"


def _time_columns(name: str, source: Source) -> tuple[str, str, str]:
    """A time column's first stages: its value (text trimmed), and that value as a number of
    the epoch (`_d`, a double) or as microseconds of an instant (`_z`), NULL where neither."""
    if name not in source.columns:
        return "null::varchar", "null::double", "null::bigint"
    column, kind = source.columns[name]
    x, t = _identifier(column), f"{name}_t"
    if kind == "VARCHAR":
        return (  # trimmed only where it must be: `trim` copies every value
            f"case when starts_with({x}, ' ') or ends_with({x}, ' ') then trim({x}) else {x} end",
            f"case when regexp_full_match({t}, '{_EPOCH}') then try_cast({t} as double) end",
            f"case when {name}_d is null and regexp_full_match({t}, '{_ISO}') "
            f"then epoch_us(try_cast({t} as timestamptz)) end",
        )
    if kind in _TIMESTAMPS:
        return x, "null::double", f"epoch_us({t})"
    return x, f"{t}::double", "null::bigint"


def _given(name: str, source: Source) -> str:
    if name not in source.columns:
        return "false"
    column, kind = source.columns[name]
    x = _identifier(column)
    return f"nullif({x}, '') is not null" if kind == "VARCHAR" else f"{x} is not null"


def _rows_sql(source: Source) -> str:
    """The listing's rows as entry values and time stages, one select per stage."""
    values = [f"{_value(name, source)} as {_identifier(name)}" for name in _VALUES]
    times = {name: _time_columns(name, source) for name in _TIMES}
    given = _given("atime", source)
    sql = f"select {', '.join(values)}, {given} as atime_given, " + ", ".join(
        f"{t} as {name}_t" for name, (t, _, _) in times.items()
    )
    sql += f" from {source.table}"
    for index, suffix in ((1, "d"), (2, "z")):  # `_z` reads `_d`: a select of its own
        columns = ", ".join(f"{parts[index]} as {name}_{suffix}" for name, parts in times.items())
        sql = f"select *, {columns} from ({sql})"
    for stage in _TIME_STAGES:
        sql = f"select *, {', '.join(stage.format(c=name) for name in _TIMES)} from ({sql})"
    return sql


def _copy_sql(source: Source, out: Path) -> str:
    """COPY the listing's rows as entries (the schema of `entries.SCHEMA`) to `out`; the first
    row a column of which came out NULL (refused) stops it with an error."""
    names = ("path", "kind", "size", "replication", "blocks", "mtime", "atime", "owner", "group")
    refused = " or ".join(f"{_identifier(name)} is null" for name in _VALUES)
    # Each column under a CASE with a NULL branch: DuckDB writes a column it can prove has no
    # NULL (a constant, a source column without one) as required, SCHEMA has every one optional.
    outer = ", ".join(
        f"case when path is not null then {_OUTPUT.get(name, _identifier(name))} end "
        f"as {_identifier(name)}"
        for name in names
    )
    return f"""
copy (
  select {outer}
  from ({_rows_sql(source)})
  where case when {refused} or ms_of_us(mtime_us) is null
                  or (atime_given and ms_of_us(atime_us) is null)
             then error('a listing row the SQL reader does not vouch for') else true end
) to {_literal(str(out))}
  (format parquet, compression zstd, compression_level 1, timestamp_is_adjusted_to_utc true,
   row_group_size {_ROW_GROUP})
"""


def summarize(db: duckdb.DuckDBPyConnection, entries: Path, *, kind: str) -> ListingSummary:
    """What the entries at `entries` hold, counted as `listings.Tally` counts them."""
    row = db.execute(
        f"""select count(*), count(*) filter (kind = 'file'), count(*) filter (kind = 'dir'),
                   count(*) filter (kind = 'symlink'), sum(size) filter (kind = 'file'),
                   sum(blocks) filter (kind = 'file'), count(distinct owner),
                   count(distinct "group")
            from read_parquet({_literal(str(entries))})"""
    ).fetchone()
    assert row is not None  # an aggregate answers one row
    entries_, files, directories, symlinks, size, blocks, users, groups = row
    return ListingSummary(
        kind=kind,
        entries=entries_,
        files=files,
        directories=directories,
        symlinks=symlinks,
        bytes=int(size or 0),
        blocks=int(blocks or 0),
        users=users,
        groups=groups,
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
