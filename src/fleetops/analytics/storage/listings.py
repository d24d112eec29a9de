"""Namespace listings as text or Parquet: `hdfs oiv -p Delimited` output and generic listings.

Each is streamed a row at a time (the csv module over the open file; a Parquet file a batch at a
time), never read whole; a bad row is an InputError naming its line (or row) and column, and
the caller's `EntryWriter` then removes what it had written.

`hdfs oiv -p Delimited` (Hadoop's PBImageDelimitedTextWriter): 12 tab-separated columns, the
header line optional. Its times are `yyyy-MM-dd HH:mm` in the time zone of the JVM that ran it
(`tz`, UTC by default: run oiv with `-Duser.timezone=UTC`); it writes 0 (1970-01-01 00:00) for
an access time a directory lacks or a NameNode did not record, read here as none. A directory's
permission starts with `d`; a symlink is written like a file, but with no replication and no
preferred block size, which no file has.

A generic listing (CSV with a header, or Parquet) names its columns: `path`, `size`, `mtime`,
`owner` and `group` are required; `kind` (file, dir or symlink; file when absent), `replication`
(1 when absent), `blocks` (0) and `atime` (none) are optional; other columns are ignored. A time
is ISO 8601 (no zone means UTC) or a number of seconds or milliseconds since the epoch, told
apart by size: 10^11 or more is milliseconds (10^11 seconds is the year 5138, 10^11 ms is
March 1973). In Parquet a time may also be a timestamp column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, cast

import pyarrow.parquet as pq

from fleetops.analytics.storage.entries import Entry, EntryWriter, Kind
from fleetops.analytics.storage.exceptions import InputError

OIV_COLUMNS = (
    "Path",
    "Replication",
    "ModificationTime",
    "AccessTime",
    "PreferredBlockSize",
    "BlocksCount",
    "FileSize",
    "NSQUOTA",
    "DSQUOTA",
    "Permission",
    "UserName",
    "GroupName",
)
REQUIRED = ("path", "size", "mtime", "owner", "group")
OPTIONAL = ("kind", "replication", "blocks", "atime")
KINDS: dict[str, Kind] = {"file": "file", "dir": "dir", "directory": "dir", "symlink": "symlink"}
MILLISECONDS_FROM = 10**11
PARQUET_BATCH = 65_536
_TIME_CACHE = 65_536  # oiv times are per minute: most repeat


@dataclass
class ListingSummary:
    """What a listing held, as written."""

    kind: str  # oiv | csv | parquet
    entries: int = 0
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    bytes: int = 0
    blocks: int = 0
    users: int = 0
    groups: int = 0


@dataclass
class Tally:
    """Counts entries as they are written."""

    kind: str
    summary: ListingSummary = field(init=False)
    _owners: set[str] = field(default_factory=set)
    _groups: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.summary = ListingSummary(self.kind)

    def add(self, entry: Entry) -> Entry:
        s = self.summary
        s.entries += 1
        if entry.kind == "file":
            s.files += 1
            s.bytes += entry.size
            s.blocks += entry.blocks
        elif entry.kind == "dir":
            s.directories += 1
        else:
            s.symlinks += 1
        self._owners.add(entry.owner)
        self._groups.add(entry.group)
        return entry

    def done(self) -> ListingSummary:
        self.summary.users, self.summary.groups = len(self._owners), len(self._groups)
        return self.summary


def looks_like_oiv(first_line: str) -> bool:
    """Whether a text file's first line is oiv Delimited output: its header, or 12 tab-separated
    fields with a time in the third and a permission in the tenth."""
    fields = first_line.rstrip("\r\n").split("\t")
    if tuple(fields) == OIV_COLUMNS:
        return True
    if len(fields) != len(OIV_COLUMNS):
        return False
    try:
        _oiv_time(fields[2], UTC)
    except ValueError:
        return False
    return fields[9][:1] in ("d", "-")


# --- hdfs oiv -p Delimited ----------------------------------------------------------------


def read_oiv(path: Path, writer: EntryWriter, *, tz: tzinfo = UTC) -> ListingSummary:
    """Write each row of `hdfs oiv -p Delimited` output at `path` to `writer`."""
    tally = Tally("oiv")
    cache: dict[str, datetime] = {}
    for number, line in _lines(path):
        fields = line.rstrip("\r\n").split("\t")
        if number == 1 and tuple(fields) == OIV_COLUMNS:
            continue
        if fields == [""]:
            continue
        writer.add(tally.add(_oiv_entry(fields, number, tz, cache)))
    return tally.done()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", newline="") as text:
        number = 0
        try:
            for number, line in enumerate(text, start=1):
                yield number, line
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text: {exc.reason}", where=f"line {number + 1}") from None


def _oiv_entry(fields: list[str], number: int, tz: tzinfo, cache: dict[str, datetime]) -> Entry:
    where = f"line {number}"
    if len(fields) != len(OIV_COLUMNS):
        raise InputError(
            f"{len(fields)} tab-separated columns, oiv Delimited has {len(OIV_COLUMNS)}",
            where=where,
        )
    values = [_column(fields, i, where) for i in (1, 4, 5, 6)]
    replication, block_size, blocks, size = values
    mtime = _cached_time(fields, 2, tz, cache, where)
    atime: datetime | None = _cached_time(fields, 3, tz, cache, where)
    if atime is not None and atime.timestamp() == 0:
        atime = None
    kind: Kind = "file"
    if fields[9].startswith("d"):
        kind = "dir"
    elif replication == 0 and block_size == 0:
        kind = "symlink"
    path = _path(fields[0], where)
    return Entry(path, kind, size, replication, blocks, mtime, atime, fields[10], fields[11])


def _column(fields: list[str], index: int, where: str) -> int:
    try:
        return int(fields[index])
    except ValueError:
        raise InputError(
            f"column {index + 1} ({OIV_COLUMNS[index]}) is {fields[index]!r}, not a whole number",
            where=where,
        ) from None


def _cached_time(
    fields: list[str], index: int, tz: tzinfo, cache: dict[str, datetime], where: str
) -> datetime:
    text = fields[index]
    found = cache.get(text)
    if found is not None:
        return found
    try:
        when = _oiv_time(text, tz)
    except ValueError:
        raise InputError(
            f"column {index + 1} ({OIV_COLUMNS[index]}) is {text!r}, not yyyy-MM-dd HH:mm",
            where=where,
        ) from None
    if len(cache) >= _TIME_CACHE:
        cache.clear()
    cache[text] = when
    return when


def _oiv_time(text: str, tz: tzinfo) -> datetime:
    if len(text) not in (16, 19) or text[10] != " ":  # HH:mm, or HH:mm:ss
        raise ValueError(text)
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


def _path(text: str, where: str) -> str:
    if not text.startswith("/"):
        raise InputError(f"path {text!r} is not absolute", where=where)
    return text.rstrip("/") or "/"


# --- generic listings: CSV and Parquet ------------------------------------------------------


def read_csv(path: Path, writer: EntryWriter) -> ListingSummary:
    """Write each row of a CSV listing with a header line at `path` to `writer`."""
    tally = Tally("csv")
    with path.open(encoding="utf-8", newline="") as text:
        rows = csv.reader(text)
        try:
            header = next(rows, None)
            if header is None:
                raise InputError("the listing is empty: no header line", where="line 1")
            columns = _columns(header, where="line 1")
            for row in rows:
                if not row:
                    continue
                where = f"line {rows.line_num}"
                if len(row) != len(header):
                    raise InputError(
                        f"{len(row)} fields, the header names {len(header)}", where=where
                    )
                values = [row[i] if i >= 0 else None for i in columns]
                writer.add(tally.add(_listing_entry(values, where)))
        except csv.Error as exc:
            raise InputError(f"malformed CSV: {exc}", where=f"line {rows.line_num}") from None
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not UTF-8 text: {exc.reason}", where=f"after line {rows.line_num}"
            ) from None
    return tally.done()


def read_parquet(path: Path, writer: EntryWriter) -> ListingSummary:
    """Write each row of a Parquet listing at `path` to `writer`, a batch at a time."""
    tally = Tally("parquet")
    listing = pq.ParquetFile(str(path))
    names = [name.strip().lower() for name in listing.schema_arrow.names]
    indexes = _columns(names, where=path.name)
    chosen = [listing.schema_arrow.names[i] for i in indexes if i >= 0]
    row = 0
    for batch in listing.iter_batches(batch_size=PARQUET_BATCH, columns=chosen):
        present = iter(batch.column(name).to_pylist() for name in chosen)
        columns = [next(present) if i >= 0 else [None] * batch.num_rows for i in indexes]
        for values in zip(*columns, strict=True):
            row += 1
            writer.add(tally.add(_listing_entry(values, f"row {row}")))
    return tally.done()


def _columns(header: Sequence[str], *, where: str) -> list[int]:
    """The position of each of REQUIRED + OPTIONAL in the header (-1 for an absent optional)."""
    names = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise InputError(
            f"the listing has no {', '.join(missing)} column (it has: {', '.join(names)}; "
            f"required: {', '.join(REQUIRED)})",
            where=where,
        )
    return [names.index(name) if name in names else -1 for name in REQUIRED + OPTIONAL]


def _listing_entry(values: Sequence[Any], where: str) -> Entry:
    """An entry from the values of REQUIRED + OPTIONAL, in that order (None: absent)."""
    path, size, mtime, owner, group, kind, replication, blocks, atime = values
    return Entry(
        path=_path(_text(path, "path", where), where),
        kind=_kind(kind, where),
        size=_whole(size, "size", where, None),
        replication=_whole(replication, "replication", where, 1),
        blocks=_whole(blocks, "blocks", where, 0),
        mtime=_required_time(mtime, where),
        atime=_time(atime, "atime", where),
        owner=_text(owner, "owner", where),
        group=_text(group, "group", where),
    )


def _text(value: Any, column: str, where: str) -> str:
    if value is None:
        raise InputError(f"column {column} is empty", where=where)
    return str(value)


def _kind(value: Any, where: str) -> Kind:
    if value is None or value == "":
        return "file"
    kind = KINDS.get(str(value).strip().lower())
    if kind is None:
        raise InputError(f"column kind is {value!r}, not one of file, dir, symlink", where=where)
    return kind


def _whole(value: Any, column: str, where: str, default: int | None) -> int:
    if (value is None or value == "") and default is not None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(cast(str, value))
    except (TypeError, ValueError):
        raise InputError(f"column {column} is {value!r}, not a whole number", where=where) from None


def _required_time(value: Any, where: str) -> datetime:
    when = _time(value, "mtime", where)
    if when is None:
        raise InputError("column mtime is empty", where=where)
    return when


def _time(value: Any, column: str, where: str) -> datetime | None:
    """A time from a timestamp, an epoch number (seconds or milliseconds) or ISO 8601 text."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _epoch(value)
        text = str(value).strip()
        if text.replace(".", "", 1).isdigit():
            return _epoch(float(text) if "." in text else int(text))
        when = datetime.fromisoformat(text)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise InputError(
            f"column {column} is {value!r}: not ISO 8601, epoch seconds or milliseconds",
            where=where,
        ) from None


def _epoch(number: float) -> datetime:
    seconds = number / 1000 if abs(number) >= MILLISECONDS_FROM else number
    return datetime.fromtimestamp(seconds, UTC)
