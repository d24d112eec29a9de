"""The one shape every storage input is read into: namespace entries in a Parquet file.

Readers (a binary HDFS fsimage, `hdfs oiv -p Delimited` text, CSV/Parquet listings, a scan of a
mounted filesystem) stream entries into an `EntryWriter`, a batch at a time, so an input of
hundreds of millions of entries never sits in memory; the analyses read the Parquet file with
DuckDB. pyarrow is imported here only, by the storage commands that need it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

Kind = Literal["file", "dir", "symlink"]
BATCH_ROWS = 65_536
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SCHEMA = pa.schema(
    [
        ("path", pa.string()),  # absolute, '/'-separated, no trailing '/' (the root is '/')
        ("kind", pa.string()),  # file | dir | symlink
        ("size", pa.int64()),  # bytes of one replica; 0 for a directory or a symlink
        ("replication", pa.int16()),  # HDFS replication; 1 on a local filesystem; 0 for a dir
        ("blocks", pa.int32()),  # HDFS blocks (0 where unknown)
        ("mtime", pa.timestamp("ms", tz="UTC")),
        ("atime", pa.timestamp("ms", tz="UTC")),  # null where the input has none
        ("owner", pa.string()),
        ("group", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    kind: Kind
    size: int
    replication: int
    blocks: int
    mtime: datetime
    atime: datetime | None
    owner: str
    group: str


class EntryWriter:
    """Entries to a Parquet file, `BATCH_ROWS` at a time; use as a context manager. On an
    exception the partial file is removed: a reader never leaves half an input behind."""

    def __init__(self, path: Path, *, batch_rows: int = BATCH_ROWS) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self.count = 0
        self._columns: list[list[object]] = [[] for _ in SCHEMA.names]
        self._writer = pq.ParquetWriter(str(path), SCHEMA, compression="zstd")

    def add(self, entry: Entry) -> None:
        self.row(
            entry.path,
            entry.kind,
            entry.size,
            entry.replication,
            entry.blocks,
            epoch_ms(entry.mtime),
            None if entry.atime is None else epoch_ms(entry.atime),
            entry.owner,
            entry.group,
        )

    def row(
        self,
        path: str,
        kind: Kind,
        size: int,
        replication: int,
        blocks: int,
        mtime_ms: int,
        atime_ms: int | None,
        owner: str,
        group: str,
    ) -> None:
        """One entry as plain values, times in milliseconds since the epoch (as HDFS keeps
        them): the readers' fast path, with no object per entry."""
        c = self._columns
        c[0].append(path)
        c[1].append(kind)
        c[2].append(size)
        c[3].append(replication)
        c[4].append(blocks)
        c[5].append(mtime_ms)
        c[6].append(atime_ms)
        c[7].append(owner)
        c[8].append(group)
        self.count += 1
        if len(c[0]) >= self.batch_rows:
            self._flush()

    def extend(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self.add(entry)

    def _flush(self) -> None:
        if self._columns[0]:
            arrays = [pa.array(c, type=t) for c, t in zip(self._columns, SCHEMA.types, strict=True)]
            self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=SCHEMA))
            self._columns = [[] for _ in SCHEMA.names]

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def __enter__(self) -> EntryWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        self._writer.close()
        self.path.unlink(missing_ok=True)


def epoch_ms(moment: datetime) -> int:
    """A time as milliseconds since the epoch (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)
