"""Listings (oiv Delimited text, CSV, Parquet) stream into entries; a bad row is named by its
line and column, and leaves no file behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.exceptions import InputError
from fleetops.analytics.storage.listings import OIV_COLUMNS, read_oiv
from fleetops.analytics.storage.readers import detect_kind, read_input

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "fsimage"
HEADER = "\t".join(OIV_COLUMNS)
# As PBImageDelimitedTextWriter writes them: a directory (access time 0, quotas -1), a file, a
# symlink (no replication, no preferred block size), a file whose access time was not recorded.
NONE = "1970-01-01 00:00"  # a time of 0
DIR = "drwxr-xr-x"
NO_QUOTA = 9223372036854775807


def oiv(*fields: object) -> str:
    return "\t".join(str(f) for f in fields)


OIV = [
    oiv("/", 0, "2017-07-08 06:00", NONE, 0, 0, 0, NO_QUOTA, -1, DIR, "mm", "supergroup"),
    oiv("/data", 0, "2017-06-17 21:03", NONE, 0, 0, 0, -1, -1, DIR, "mm", "supergroup"),
    oiv("/data/a.img", 3, "2017-06-17 21:25", "2017-06-17 21:25", 134217728, 2, 167772160, 0, 0,
        "-rw-r--r--", "foo", "nobody"),
    oiv("/data/link", 0, "2017-06-17 21:26", "2017-06-17 21:26", 0, 0, 0, 0, 0, "-rwxrwxrwx", "mm",
        "supergroup"),
    oiv("/data/cold.img", 2, "2017-06-17 21:27", NONE, 134217728, 1, 1024, 0, 0, "-rw-r--r--+",
        "root", "root"),
]  # fmt: skip


def rows(out: Path) -> dict[str, tuple[object, ...]]:
    return {r[0]: r[1:] for r in duckdb.sql(f"select * from '{out}'").fetchall()}


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    source = tmp_path / name
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return source


@pytest.mark.parametrize("header", [True, False])
def test_oiv_delimited_rows_become_entries(header: bool, tmp_path: Path) -> None:
    source = write(tmp_path, "oiv.txt", [HEADER, *OIV] if header else OIV)
    summary = read_input(source, tmp_path / "out.parquet")
    assert summary.kind == "oiv"
    assert (summary.files, summary.directories, summary.symlinks) == (2, 2, 1)
    assert (summary.bytes, summary.blocks, summary.users, summary.groups) == (167773184, 3, 3, 3)
    got = rows(tmp_path / "out.parquet")
    assert got["/data/a.img"][:4] == ("file", 167772160, 3, 2)
    assert got["/data/a.img"][4] == datetime(2017, 6, 17, 21, 25, tzinfo=UTC)
    assert got["/data/link"][0] == "symlink"
    assert got["/"][0] == "dir"
    assert got["/data"][5] is None  # 1970-01-01 00:00: no access time
    assert got["/data/cold.img"][5] is None


def test_oiv_times_are_read_in_the_zone_oiv_ran_in(tmp_path: Path) -> None:
    source = write(tmp_path, "oiv.txt", OIV[2:3])
    plus_two = timezone(timedelta(hours=2))
    with EntryWriter(tmp_path / "out.parquet") as writer:
        read_oiv(source, writer, tz=plus_two)
    mtime = rows(tmp_path / "out.parquet")["/data/a.img"][4]
    assert mtime == datetime(2017, 6, 17, 19, 25, tzinfo=UTC)


def test_oiv_of_a_shared_image_matches_the_image_read_directly(tmp_path: Path) -> None:
    """oiv text written the way Hadoop writes it, from the entries of fsi_small_h3_2.img, reads
    back to the same paths, kinds, sizes, replication, blocks and owners."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} (the shared data) is absent")
    read_input(DATA / "fsi_small_h3_2.img", tmp_path / "image.parquet")
    image = rows(tmp_path / "image.parquet")
    lines = [HEADER]
    for path, (kind, size, replication, blocks, mtime, atime, owner, group) in image.items():
        stamp = f"{mtime:%Y-%m-%d %H:%M}"
        seen = f"{atime:%Y-%m-%d %H:%M}" if atime else "1970-01-01 00:00"
        mode = "drwxr-xr-x" if kind == "dir" else "-rw-r--r--"
        block_size = 134217728 if kind == "file" else 0
        fields = [
            path,
            replication,
            stamp,
            seen,
            block_size,
            blocks,
            size,
            0,
            0,
            mode,
            owner,
            group,
        ]
        lines.append("\t".join(str(f) for f in fields))
    summary = read_input(write(tmp_path, "oiv.txt", lines), tmp_path / "oiv.parquet")
    assert (summary.files, summary.directories, summary.bytes) == (16, 14, 356_417_536)
    listed = rows(tmp_path / "oiv.parquet")
    assert {p: r[:4] + r[6:] for p, r in listed.items()} == {
        p: r[:4] + r[6:] for p, r in image.items()
    }


def refused(source: Path, tmp_path: Path, match: str, kind: str | None = None) -> InputError:
    out = tmp_path / "out.parquet"
    with pytest.raises(InputError, match=match) as caught:
        read_input(source, out, kind=kind)
    assert not out.exists(), "a failed read leaves no partial file"
    return caught.value


def test_a_malformed_oiv_line_is_named_with_its_column(tmp_path: Path) -> None:
    bad = OIV[2].replace("\t167772160\t", "\t16x\t")
    error = refused(write(tmp_path, "oiv.txt", [HEADER, *OIV[:2], bad]), tmp_path, "not a whole")
    assert error.where == "line 4"
    assert "column 7 (FileSize) is '16x'" in error.problem


def test_an_oiv_line_with_a_missing_column_or_bad_time_is_named(tmp_path: Path) -> None:
    short = OIV[2].rsplit("\t", 1)[0]
    error = refused(write(tmp_path, "oiv.txt", [*OIV[:2], short]), tmp_path, "11 tab-separated")
    assert error.where == "line 3"
    bad_time = OIV[2].replace("2017-06-17 21:25\t2017", "17/06/2017\t2017", 1)
    error = refused(write(tmp_path, "oiv.txt", [OIV[0], bad_time]), tmp_path, "ModificationTime")
    assert error.where == "line 2"


CSV = [
    "path,size,replication,mtime,atime,owner,group,kind",
    "/data,0,0,2024-01-02T03:04:05Z,,hdfs,hadoop,dir",
    "/data/a.csv,100,3,1704164645,1704164645000,alice,analysts,file",
    '"/data/b, with comma.csv",50,2,2024-01-02 03:04:05+02:00,,bob,analysts,',
]


def test_a_csv_listing_reads_iso_and_epoch_times(tmp_path: Path) -> None:
    summary = read_input(write(tmp_path, "listing.csv", CSV), tmp_path / "out.parquet")
    assert (summary.kind, summary.files, summary.directories, summary.bytes) == ("csv", 2, 1, 150)
    got = rows(tmp_path / "out.parquet")
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got["/data"][4] == when  # ISO 8601 with Z
    assert got["/data/a.csv"][4:6] == (when, when)  # epoch seconds, epoch milliseconds
    assert got["/data/b, with comma.csv"][4] == when - timedelta(hours=2)  # ISO with an offset
    assert got["/data/b, with comma.csv"][0] == "file"  # an empty kind is a file


def test_a_csv_listing_may_leave_out_optional_columns(tmp_path: Path) -> None:
    source = write(tmp_path, "l.csv", ["Path,Size,MTime,Owner,Group", "/x,5,1700000000,u,g"])
    read_input(source, tmp_path / "out.parquet")
    assert rows(tmp_path / "out.parquet")["/x"][:4] == ("file", 5, 1, 0)


def test_a_malformed_csv_row_is_named_by_its_line(tmp_path: Path) -> None:
    # the quoted field spans two lines: the bad row is on line 5 of the file
    lines = [
        *CSV[:2],
        '"/data/two\nlines",1,1,1704164645,,a,b,file',
        "/data/c,ten,1,1704164645,,a,b,",
    ]
    error = refused(write(tmp_path, "l.csv", lines), tmp_path, "column size is 'ten'")
    assert error.where == "line 5"
    lines = [*CSV[:2], "/data/d,1,1,yesterday,,a,b,file"]
    error = refused(write(tmp_path, "l.csv", lines), tmp_path, "column mtime is 'yesterday'")
    assert error.where == "line 3"


def test_a_csv_row_with_too_few_fields_or_a_missing_column(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "l.csv", [*CSV[:2], "/x,1"]), tmp_path, "2 fields")
    assert error.where == "line 3"
    missing = write(tmp_path, "l.csv", ["path,size,mtime,owner", "/x,1,1700000000,u"])
    refused(missing, tmp_path, "no group column", kind="csv")


def parquet_listing(tmp_path: Path, table: pa.Table) -> Path:
    source = tmp_path / "listing.parquet"
    pq.write_table(table, source)
    return source


def test_a_parquet_listing_reads_timestamp_and_epoch_columns(tmp_path: Path) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    table = pa.table(
        {
            "path": ["/p/a", "/p/b"],
            "size": pa.array([10, 20], pa.int64()),
            "mtime": pa.array([when, when], pa.timestamp("us", tz="UTC")),
            "atime": pa.array([1704164645000, None], pa.int64()),  # epoch milliseconds
            "owner": ["u", "v"],
            "group": ["g", "g"],
            "extra": [1, 2],  # ignored
        }
    )
    summary = read_input(parquet_listing(tmp_path, table), tmp_path / "out.parquet")
    assert (summary.kind, summary.files, summary.bytes, summary.users) == ("parquet", 2, 30, 2)
    got = rows(tmp_path / "out.parquet")
    assert got["/p/a"][4:6] == (when, when)
    assert got["/p/b"][5] is None


def test_a_parquet_listing_missing_a_column_is_refused(tmp_path: Path) -> None:
    table = pa.table({"path": ["/a"], "mtime": [1700000000], "owner": ["u"], "group": ["g"]})
    error = refused(parquet_listing(tmp_path, table), tmp_path, "the listing has no size column")
    assert error.where == "listing.parquet"


def test_a_bad_parquet_value_names_its_row(tmp_path: Path) -> None:
    table = pa.table(
        {
            "path": ["/a", "/b"],
            "size": ["1", "x"],
            "mtime": [1, 2],
            "owner": ["u"] * 2,
            "group": ["g"] * 2,
        }
    )
    error = refused(parquet_listing(tmp_path, table), tmp_path, "column size is 'x'")
    assert error.where == "row 2"


def test_kinds_are_told_apart(tmp_path: Path) -> None:
    assert detect_kind(write(tmp_path, "a.txt", OIV)) == "oiv"
    assert detect_kind(write(tmp_path, "b.txt", [HEADER])) == "oiv"
    assert detect_kind(write(tmp_path, "c.txt", CSV)) == "csv"
    table = pa.table({"path": ["/a"]})
    assert detect_kind(parquet_listing(tmp_path, table)) == "parquet"
    refused(write(tmp_path, "d.txt", ["hello"]), tmp_path, "cannot tell what this input is")
