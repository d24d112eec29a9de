"""DuckDB's copy of a CSV or Parquet listing gives the Python reader's entries, value for value;
a listing it cannot vouch for is read by the Python reader, whose error names the line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fleetops.analytics.storage.entries import EPOCH, SCHEMA, EntryWriter, epoch_ms
from fleetops.analytics.storage.exceptions import InputError
from fleetops.analytics.storage.listings import ListingSummary, _time, read_csv, read_parquet
from fleetops.analytics.storage.listings_sql import copy_listing
from fleetops.analytics.storage.readers import read_input

VARIED = [
    "Path , SIZE,replication,mtime,atime,owner,group,Kind,comment",
    "/,0,0,2024-01-02T03:04:05Z,,root,root,Directory,the root",
    "/data/,0,0,2024-01-02 03:04:05+02:00,,hdfs,hadoop,dir,trailing slash",
    "/data/a.csv,100,3,1704164645,1704164645123,alice,analysts,file,epoch s and ms",
    '"/data/b, with comma.csv",50,2,1704164645.1235,2024-01-02T03:04:05.123456,bob,"a, b",,',
    "/data/c,7,,1704164645.9999999,2024-01-02 03:04,carol,,FILE,decimals; no replication",
    "/data/link,0,1,1.5,2024-01-02T03:04:05-0130,dave,g,symlink,",
    "/data/big,12345678901,1,1704164645000,1704164645.5,erin,g,file,",
    "",
    '/data/q,1,1,2024-01-02,,"o""q",g,file,"quoted ""x"""',
]


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    source = tmp_path / name
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return source


def python_read(source: Path, out: Path, kind: str) -> ListingSummary:
    with EntryWriter(out) as writer:
        return (read_csv if kind == "csv" else read_parquet)(source, writer)


def sorted_rows(parquet: Path) -> list[tuple[object, ...]]:
    return duckdb.sql(f"select * from read_parquet('{parquet}') order by path").fetchall()


def same_as_python(source: Path, tmp_path: Path, kind: str) -> list[tuple[object, ...]]:
    """The fast path's entries, after checking they are the Python reader's, schema included."""
    fast, slow = tmp_path / "fast.parquet", tmp_path / "slow.parquet"
    summary = copy_listing(source, fast, kind=kind)
    assert summary is not None, "the fast path declined a valid listing"
    assert summary == python_read(source, slow, kind)
    assert pq.read_schema(fast).equals(SCHEMA)
    assert sorted_rows(fast) == sorted_rows(slow)
    return sorted_rows(fast)


def test_a_varied_csv_listing_copies_to_the_python_readers_entries(tmp_path: Path) -> None:
    got = same_as_python(write(tmp_path, "l.csv", VARIED), tmp_path, "csv")
    paths = [row[0] for row in got]
    assert paths[0] == "/"
    assert {"/data", "/data/b, with comma.csv"} <= set(paths)
    by_path = {row[0]: row[1:] for row in got}
    assert (by_path["/"][0], by_path["/data/link"][0]) == ("dir", "symlink")
    assert by_path["/data/c"][:4] == ("file", 7, 1, 0)  # replication and blocks defaulted
    assert by_path["/data/c"][4] == datetime(2024, 1, 2, 3, 4, 6, tzinfo=UTC)  # .9999999 s
    assert by_path["/data/a.csv"][5] == datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert by_path["/data/q"][6] == 'o"q'


def test_a_csv_listing_of_only_required_columns_or_only_a_header(tmp_path: Path) -> None:
    got = same_as_python(
        write(tmp_path, "l.csv", ["path,size,mtime,owner,group", "/x,5,1,u,"]), tmp_path, "csv"
    )
    assert got == [
        ("/x", "file", 5, 1, 0, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), None, "u", "")
    ]
    assert (
        same_as_python(write(tmp_path, "h.csv", ["path,size,mtime,owner,group"]), tmp_path, "csv")
        == []
    )


def test_read_input_takes_the_fast_path_for_a_csv_listing(tmp_path: Path) -> None:
    source = write(tmp_path, "l.csv", VARIED)
    summary = read_input(source, tmp_path / "out.parquet")
    assert (summary.kind, summary.entries, summary.files, summary.directories) == ("csv", 8, 5, 2)
    assert (summary.symlinks, summary.bytes) == (1, 12_345_679_059)
    assert (summary.users, summary.groups) == (8, 6)


def test_a_parquet_listing_with_native_types_copies_to_the_python_readers_entries(
    tmp_path: Path,
) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    table = pa.table(
        {
            "PATH": ["/p/", "/p/a", "/p/b", "/p/c"],
            "size": pa.array([0, 10, 20, None], pa.int32()),
            "kind": ["dir", "file", None, ""],
            "replication": pa.array([0, 3, None, 2], pa.int8()),
            "blocks": ["", "1", "2", None],
            "mtime": pa.array([when] * 4, pa.timestamp("us", tz="UTC")),
            "atime": pa.array([1704164645000, None, 1704164645, 1.5], pa.float64()),
            "owner": pa.array([1000, 1001, 1000, 7], pa.int64()),  # uids: their text
            "group": ["g", "g", "h", "g"],
            "extra": [1, 2, 3, 4],
        }
    ).filter(pa.array([True, True, True, False]))  # the last has no size: its own test
    source = tmp_path / "listing.parquet"
    pq.write_table(table, source)
    got = same_as_python(source, tmp_path, "parquet")
    assert got[0][:5] == ("/p", "dir", 0, 0, 0)
    assert got[1][5:7] == (datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC), None)
    assert got[1][7] == "1001"


def test_a_parquet_listing_with_naive_timestamps_and_iso_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            "path": ["/a", "/b"],
            "size": [1, 2],
            "mtime": pa.array([datetime(2024, 1, 2), datetime(2024, 1, 3)], pa.timestamp("ms")),
            "atime": ["2024-01-02T03:04:05+02:00", ""],
            "owner": ["u", "v"],
            "group": ["g", "g"],
        }
    )
    source = tmp_path / "listing.parquet"
    pq.write_table(table, source)
    got = same_as_python(source, tmp_path, "parquet")
    assert got[0][5:7] == (
        datetime(2024, 1, 2, tzinfo=UTC),
        datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
    )


GOOD = "/data/ok,1,1,1704164645,,a,b,file,"
BAD_CSV = {
    "a bad number": ([GOOD, "/data/c,ten,1,1704164645,,a,b,,"], "line 4", "column size is 'ten'"),
    "a bad time": ([GOOD, "/d,1,1,yesterday,,a,b,,"], "line 4", "column mtime is 'yesterday'"),
    "a relative path": ([GOOD, "data/x,1,1,1,,a,b,,"], "line 4", "path 'data/x' is not absolute"),
    "an unknown kind": ([GOOD, "/x,1,1,1,,a,b,folder,"], "line 4", "column kind is 'folder'"),
    "too few fields": ([GOOD, "/x,1"], "line 4", "2 fields, the header names 9"),
    "too many fields": ([GOOD, "/x,1,1,1,,a,b,,,z"], "line 4", "10 fields, the header names 9"),
    "an empty mtime": ([GOOD, "/x,1,1,,,a,b,,"], "line 4", "column mtime is empty"),
    "no header": ([], "line 1", "the listing is empty"),
    "a field over csv's limit": (
        [GOOD, "/" + "x" * 200_000 + ",1,1,1,,a,b,,"],
        "line 4",
        "field larger than field limit",
    ),
}


@pytest.mark.parametrize("case", BAD_CSV)
def test_a_bad_csv_listing_gets_the_python_readers_error_and_leaves_nothing(
    case: str, tmp_path: Path
) -> None:
    lines, where, problem = BAD_CSV[case]
    if lines:
        lines = [VARIED[0], VARIED[1], *lines]
    source = tmp_path / "l.csv"
    source.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    assert_refused_as_python(source, tmp_path, "csv", where, problem)


def assert_refused_as_python(
    source: Path, tmp_path: Path, kind: str, where: str | None, problem: str
) -> None:
    """The fast path declines, and read_input raises the Python reader's error, where included
    (`where` None: as the Python reader says), leaving no file and no spill folder."""
    out = tmp_path / "out.parquet"
    assert copy_listing(source, out, kind=kind) is None
    assert not out.exists()
    with pytest.raises(InputError) as fast:
        read_input(source, out, kind=kind)
    assert not out.exists(), "a failed read leaves no partial file"
    assert list(tmp_path.glob(".*spill*")) == []
    with pytest.raises(InputError) as slow:
        python_read(source, tmp_path / "slow.parquet", kind)
    assert (fast.value.problem, fast.value.where) == (slow.value.problem, slow.value.where)
    assert where is None or fast.value.where == where
    assert problem in fast.value.problem


def test_a_csv_listing_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    source = tmp_path / "l.csv"
    source.write_bytes(
        ("\n".join([*VARIED[:3], "/x,1,1,1,,a,b,,"]) + "\n/\xff,1,1,1,,a,b,,\n").encode("latin-1")
    )
    # the decoder fails on the buffer it reads ahead: the Python reader's "after line" counts
    # the lines csv had parsed by then (none, in a file this small)
    assert_refused_as_python(source, tmp_path, "csv", None, "not UTF-8 text: invalid start byte")


def test_a_csv_listing_missing_a_column_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path, "l.csv", ["path,size,mtime,owner", "/x,1,1700000000,u"])
    assert_refused_as_python(source, tmp_path, "csv", "line 1", "the listing has no group column")


def test_a_bad_parquet_value_gets_the_python_readers_error(tmp_path: Path) -> None:
    table = pa.table(
        {
            "path": ["/a", "/b"],
            "size": [1, None],
            "mtime": [1, 2],
            "owner": ["u"] * 2,
            "group": ["g"] * 2,
        }
    )
    source = tmp_path / "listing.parquet"
    pq.write_table(table, source)
    assert_refused_as_python(source, tmp_path, "parquet", "row 2", "column size is None")


def test_a_listing_the_sql_declines_but_python_reads_is_read_whole(tmp_path: Path) -> None:
    """`1_000` is a whole number to Python and not to the SQL, which declines the listing."""
    source = write(tmp_path, "l.csv", ["path,size,mtime,owner,group", "/x,1_000,1,u,g"])
    assert copy_listing(source, tmp_path / "fast.parquet", kind="csv") is None
    summary = read_input(source, tmp_path / "out.parquet")
    assert (summary.entries, summary.bytes) == (1, 1000)


# Times the SQL reads, to the millisecond Python reads; and times Python refuses, or that the SQL
# declines (leaving them to Python): never a different instant.
READ = [
    "1704164645", "1704164645000", "99999999999", "100000000000", "1704164645.0000005",
    "1704164645.0000015", "0.0005", ".5", "5.", "253402300799999", "20240102", "2024-01-02",
    "2024-01-02T03:04:05.9999Z", "2024-01-02 03:04:05-23:59", "9999-12-31T23:59:59.999",
    " 2024-01-02T03:04 ",
]  # fmt: skip
NOT_READ = [
    "9999-12-31T23:00-02:00", "253402300800000", "2024-02-30", "2024-01-02T24:00", "1e5", "-5",
    "nan", "0x10", "2024-1-2", "infinity", "2024-01-02 03:04:05 Europe/Berlin", "0999-01-01",
    "1000-01-01T00:00+23:00",  # year 999 in UTC: Python reads it, the SQL leaves it to Python
]  # fmt: skip


@pytest.mark.parametrize("text", READ + NOT_READ)
def test_a_time_is_read_as_python_reads_it_or_not_at_all(text: str, tmp_path: Path) -> None:
    source = write(tmp_path, "l.csv", ["path,size,mtime,owner,group", f'/x,1,"{text}",u,g'])
    copied = copy_listing(source, tmp_path / "fast.parquet", kind="csv")
    if text in NOT_READ:
        assert copied is None
        return
    assert copied is not None
    when = _time(text, "mtime", "line 2")
    assert when is not None
    written = sorted_rows(tmp_path / "fast.parquet")[0][5]
    assert written == EPOCH + timedelta(milliseconds=epoch_ms(when))  # as EntryWriter keeps it
