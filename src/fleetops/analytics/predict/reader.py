"""Daily SMART snapshot files (Backblaze layout) read by name into one DuckDB table.

One CSV or CSV.gz per day, named `YYYY-MM-DD.csv[.gz]`; only days up to `as_of` are read, so
nothing from the future reaches a prediction. Columns are taken by name: later years add SMART
attributes and drop none that matter here; an attribute a day lacks is null. DuckDB reads each
file strictly; a file it refuses is scanned by Python to name the file and line.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from fleetops.analytics.predict.exceptions import HistoryError, HistoryNotFound

if TYPE_CHECKING:
    import duckdb

# Raw counters read: read errors, reallocated, power-on hours, reported uncorrectable, command
# timeouts, temperature, pending, offline uncorrectable (Backblaze's own failure signals).
ATTRIBUTES = (1, 5, 9, 187, 188, 194, 197, 198)
REQUIRED = ("date", "serial_number", "model", "failure")
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.csv(\.gz)?$")
TABLE = "smart"


def day_files(directory: Path, *, as_of: date | None = None) -> list[tuple[date, Path]]:
    """The daily files of `directory` up to `as_of`, oldest first."""
    if not directory.is_dir():
        raise HistoryNotFound(f"{directory}: no such directory")
    found = []
    for path in directory.iterdir():
        match = DAY_FILE.match(path.name)
        if match:
            day = date.fromisoformat(match.group(1))
            if as_of is None or day <= as_of:
                found.append((day, path))
    if not found:
        limit = f" up to {as_of}" if as_of else ""
        raise HistoryNotFound(f"{directory}: no daily SMART file (YYYY-MM-DD.csv[.gz]){limit}")
    return sorted(found)


def load(db: duckdb.DuckDBPyConnection, directory: Path, *, as_of: date | None = None) -> int:
    """Read the days up to `as_of` into table `smart`; the number of days read."""
    columns = ", ".join(f"s{n} double" for n in ATTRIBUTES)
    db.execute(
        f"create or replace table {TABLE} (day date, serial varchar, model varchar, "
        f"failure integer, {columns})"
    )
    files = day_files(directory, as_of=as_of)
    for day, path in files:
        _load_day(db, day, path)
    return len(files)


def _load_day(db: duckdb.DuckDBPyConnection, day: date, path: Path) -> None:
    names = _header(path)
    smart = [f"smart_{n}_raw" for n in ATTRIBUTES]
    picked = [
        f"try_cast(nullif(trim(smart_{n}_raw), '') as double)"
        if f"smart_{n}_raw" in names
        else "null::double"
        for n in ATTRIBUTES
    ]
    bad = " or ".join(
        [
            f"date is distinct from '{day.isoformat()}'",
            "coalesce(trim(serial_number), '') = ''",
            "failure is null or failure not in ('0', '1')",
        ]
        + [
            f"(nullif(trim({c}), '') is not null and try_cast(trim({c}) as double) is null)"
            for c in smart
            if c in names
        ]
    )
    # The header read above, every field as text: DuckDB then refuses a row of another length.
    columns = ", ".join(f"'{_quoted(name)}': 'VARCHAR'" for name in names)
    source = (
        f"read_csv('{_quoted(str(path))}', header = true, auto_detect = false, strict_mode = true, "
        f"delim = ',', quote = '\"', escape = '\"', columns = {{{columns}}})"
    )
    try:
        db.execute(
            f"insert into {TABLE} select '{day.isoformat()}'::date, trim(serial_number), "
            f"trim(model), failure::integer, {', '.join(picked)} from {source} "
            f"where case when {bad} then error('malformed row') else true end"
        )
    except Exception as exc:  # duckdb.Error, but duckdb is imported lazily
        raise scan(path, day) or HistoryError(f"cannot read: {exc}", where=path.name) from None


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def _header(path: Path) -> list[str]:
    with _opened(path) as text:
        names = next(csv.reader(text), [])
    if not names:
        raise HistoryError("empty: no header", where=path.name)
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise HistoryError(f"no column {missing[0]!r}", where=f"{path.name} line 1")
    return names


def scan(path: Path, day: date) -> HistoryError | None:
    """The first malformed row of a daily file, as an error naming the file and line."""
    try:
        with _opened(path) as text:
            rows = enumerate(csv.reader(text), start=1)
            _, names = next(rows, (1, []))
            at = {name: i for i, name in enumerate(names)}
            counters = [f"smart_{n}_raw" for n in ATTRIBUTES if f"smart_{n}_raw" in at]
            for number, values in rows:
                problem = _problem(values, names, at, counters, day)
                if problem:
                    return HistoryError(problem, where=f"{path.name} line {number}")
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        return HistoryError(f"unreadable: {exc}", where=path.name)
    return None


def _problem(
    values: list[str], names: list[str], at: dict[str, int], counters: list[str], day: date
) -> str | None:
    if len(values) != len(names):
        return f"{len(values)} fields, expected {len(names)}"
    if values[at["date"]].strip() != day.isoformat():
        return f"date {values[at['date']]!r}, expected {day.isoformat()} (the file's day)"
    if not values[at["serial_number"]].strip():
        return "empty serial_number"
    if values[at["failure"]].strip() not in ("0", "1"):
        return f"failure {values[at['failure']]!r}: expected 0 or 1"
    for name in counters:
        text = values[at[name]].strip()
        if text:
            try:
                float(text)
            except ValueError:
                return f"{name} {text!r}: not a number"
    return None


@contextmanager
def _opened(path: Path) -> Iterator[io.TextIOBase]:
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        yield text
