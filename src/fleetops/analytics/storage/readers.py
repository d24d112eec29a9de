"""One way in for every storage input: its kind told (or forced), read into a Parquet file.

The kinds: `fsimage` (a binary HDFS image: its magic), `parquet` (a Parquet listing: its magic
or `.parquet`), `oiv` (`hdfs oiv -p Delimited` text: its header, or its 12 tab-separated
columns) and `csv` (a listing with a header naming its columns).

CSV and Parquet listings are copied by DuckDB (`listings_sql`); where it declines a listing (a
row it cannot vouch for), the Python reader reads it, and names the bad row if there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.exceptions import InputError
from fleetops.analytics.storage.fsimage import ImageSummary, is_fsimage, read_fsimage
from fleetops.analytics.storage.listings import (
    ListingSummary,
    looks_like_oiv,
    read_csv,
    read_oiv,
    read_parquet,
)
from fleetops.analytics.storage.listings_sql import copy_listing

KINDS = ("fsimage", "oiv", "csv", "parquet")
_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class InputSummary:
    """What an input held, as written to the Parquet file."""

    kind: str
    entries: int
    files: int
    directories: int
    symlinks: int
    bytes: int  # one replica
    blocks: int
    users: int
    groups: int
    layout_version: int | None = None  # fsimage only
    codec: str | None = None  # fsimage only: the Hadoop codec class, "" when not compressed
    unreachable: int = 0  # fsimage only: inodes no directory lists, not written


def read_input(path: Path, out: Path, *, kind: str | None = None) -> InputSummary:
    """Read the input at `path` into entries at `out`; `kind` forces one of `KINDS`.

    Nothing is left at `out` if the input is bad."""
    if not path.is_file():
        raise InputError("no such file", where=str(path))
    chosen = kind or detect_kind(path)
    readers: dict[str, Callable[[Path, EntryWriter], ImageSummary | ListingSummary]] = {
        "fsimage": read_fsimage,
        "oiv": read_oiv,
        "csv": read_csv,
        "parquet": read_parquet,
    }
    if chosen not in readers:
        raise InputError(f"unknown input kind {chosen!r} (kinds: {', '.join(KINDS)})")
    if chosen in ("csv", "parquet"):
        copied = copy_listing(path, out, kind=chosen)
        if copied is not None:
            return _from_listing(copied)
    with EntryWriter(out) as writer:
        summary = readers[chosen](path, writer)
    if isinstance(summary, ImageSummary):
        return _from_image(summary, entries=writer.count)
    return _from_listing(summary)


def _from_listing(summary: ListingSummary) -> InputSummary:
    return InputSummary(
        kind=summary.kind,
        entries=summary.entries,
        files=summary.files,
        directories=summary.directories,
        symlinks=summary.symlinks,
        bytes=summary.bytes,
        blocks=summary.blocks,
        users=summary.users,
        groups=summary.groups,
    )


def detect_kind(path: Path) -> str:
    """The kind of the input at `path`, from its first bytes (or its name, for Parquet)."""
    with path.open("rb") as file:
        head = file.read(_SNIFF_BYTES)
    if is_fsimage(head):
        return "fsimage"
    if head.startswith(_PARQUET_MAGIC) or path.suffix.lower() == ".parquet":
        return "parquet"
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    if looks_like_oiv(first):
        return "oiv"
    if "," in first and "path" in (name.strip().strip('"').lower() for name in first.split(",")):
        return "csv"
    raise InputError(
        "cannot tell what this input is: not an fsimage (no HDFSIMG1), not Parquet, not oiv "
        "Delimited text (12 tab-separated columns), not a CSV listing (a header naming path); "
        f"name its kind ({', '.join(KINDS)})",
        where=path.name,
    )


def _from_image(summary: ImageSummary, *, entries: int) -> InputSummary:
    return InputSummary(
        kind="fsimage",
        entries=entries,
        files=summary.files,
        directories=summary.directories,
        symlinks=summary.symlinks,
        bytes=summary.bytes,
        blocks=summary.blocks,
        users=summary.users,
        groups=summary.groups,
        layout_version=summary.layout_version,
        codec=summary.codec,
        unreachable=summary.unreachable,
    )
