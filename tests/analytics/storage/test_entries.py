"""Entries stream to Parquet a batch at a time, read back by DuckDB; a failed read leaves none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from fleetops.analytics.storage.entries import Entry, EntryWriter

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def entry(path: str, size: int = 10) -> Entry:
    return Entry(path, "file", size, 3, 1, WHEN, None, "hdfs", "supergroup")


def test_entries_are_written_in_batches_and_read_back(tmp_path: Path) -> None:
    out = tmp_path / "entries.parquet"
    with EntryWriter(out, batch_rows=2) as writer:
        writer.extend(entry(f"/d/f{i}", i) for i in range(5))
    assert writer.count == 5
    rows = duckdb.sql(
        f"select path, size, replication, mtime from '{out}' order by size"
    ).fetchall()
    assert [r[:3] for r in rows] == [(f"/d/f{i}", i, 3) for i in range(5)]
    assert rows[0][3].replace(tzinfo=UTC) == WHEN.replace(tzinfo=None).replace(tzinfo=UTC)


def test_a_reader_that_fails_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "entries.parquet"

    def read() -> None:
        with EntryWriter(out, batch_rows=2) as writer:
            writer.extend(entry(f"/d/f{i}") for i in range(3))
            raise ValueError("corrupt input")

    with pytest.raises(ValueError, match="corrupt"):
        read()
    assert not out.exists()
