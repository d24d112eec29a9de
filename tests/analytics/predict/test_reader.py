"""The daily SMART reader on real Backblaze rows: by name, up to a day, bad rows named."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import duckdb
import pytest

from fleetops.analytics.predict import reader
from fleetops.analytics.predict.exceptions import HistoryError, HistoryNotFound

# The header and rows as in Backblaze's 2013-04-10.csv.gz (the last drive failed that day).
NUMBERS = (1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 15, 183, 184, 187, 188, 189, 190, 191, 192)
NUMBERS += (193, 194, 195, 196, 197, 198, 199, 200, 201, 223, 225, 240, 241, 242, 250, 251, 252)
NUMBERS += (254, 255)
HEADER = "date,serial_number,model,capacity_bytes,failure," + ",".join(
    f"smart_{n}_normalized,smart_{n}_raw" for n in NUMBERS
)
ROWS = [
    "2013-04-10,MJ0351YNG9Z0XA,Hitachi HDS5C3030ALA630,3000592982016,0,,0,,,,,,,,0,,,,,,4031"
    ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,26,,,,,,0,,,,,,,,,,,,,,,,,,,,,,,,,,,,",
    "2013-04-10,MJ0351YNG9WJSA,Hitachi HDS5C3030ALA630,3000592982016,0,,0,,,,,,,,2,,,,,,4099"
    ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,29,,,,,,0,,,,,,,,,,,,,,,,,,,,,,,,,,,,",
    "2013-04-10,9VS3FM1J,ST31500341AS,1500301910016,1,,222508045,,,,,,,,4094,,,,,,26993"
    ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,31,,,,,,0,,,,,,,,,,,,,,,,,,,,,,,,,,,,",
]


def write(path: Path, lines: list[str]) -> Path:
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rows(db: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return db.execute(
        "select day, serial, model, failure, s1, s5, s9, s187, s194, s197 from smart "
        "order by day, serial"
    ).fetchall()


def test_real_rows_are_read_by_name(tmp_path: Path) -> None:
    write(tmp_path / "2013-04-10.csv.gz", [HEADER, *ROWS])
    db = duckdb.connect()
    assert reader.load(db, tmp_path) == 1
    day = date(2013, 4, 10)
    assert rows(db) == [
        (day, "9VS3FM1J", "ST31500341AS", 1, 222508045.0, 4094.0, 26993.0, None, 31.0, 0.0),
        (day, "MJ0351YNG9WJSA", "Hitachi HDS5C3030ALA630", 0, 0.0, 2.0, 4099.0, None, 29.0, 0.0),
        (day, "MJ0351YNG9Z0XA", "Hitachi HDS5C3030ALA630", 0, 0.0, 0.0, 4031.0, None, 26.0, 0.0),
    ]


def test_days_with_different_columns_are_read_by_name(tmp_path: Path) -> None:
    # A later layout: columns reordered, one added (smart_187), one dropped (smart_1), one extra.
    write(tmp_path / "2013-04-10.csv.gz", [HEADER, ROWS[0]])
    write(
        tmp_path / "2013-04-11.csv",
        [
            "serial_number,date,failure,model,extra_column,smart_197_raw,smart_5_raw,"
            "smart_187_raw,smart_9_raw,smart_194_raw",
            "MJ0351YNG9Z0XA,2013-04-11,0,Hitachi HDS5C3030ALA630,x,3,1,7,4055,27",
        ],
    )
    db = duckdb.connect()
    assert reader.load(db, tmp_path) == 2
    model = "Hitachi HDS5C3030ALA630"
    assert rows(db) == [
        (date(2013, 4, 10), "MJ0351YNG9Z0XA", model, 0, 0.0, 0.0, 4031.0, None, 26.0, 0.0),
        (date(2013, 4, 11), "MJ0351YNG9Z0XA", model, 0, None, 1.0, 4055.0, 7.0, 27.0, 3.0),
    ]


def test_only_days_up_to_as_of_are_read(tmp_path: Path) -> None:
    write(tmp_path / "2013-04-10.csv.gz", [HEADER, ROWS[0]])
    write(tmp_path / "2013-04-11.csv.gz", [HEADER, ROWS[1].replace("2013-04-10", "2013-04-11")])
    (tmp_path / "notes.txt").write_text("not a day\n")
    db = duckdb.connect()
    assert reader.load(db, tmp_path, as_of=date(2013, 4, 10)) == 1
    assert [r[1] for r in rows(db)] == ["MJ0351YNG9Z0XA"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            ROWS[1].replace(",2,", ",two,", 1),
            "2013-04-10.csv.gz line 3: smart_5_raw 'two': not a number",
        ),
        (ROWS[1] + ",9", "2013-04-10.csv.gz line 3: 86 fields, expected 85"),
        (ROWS[1].replace(",0,,0,", ",maybe,,0,", 1), "2013-04-10.csv.gz line 3: failure 'maybe'"),
        (ROWS[1].replace("2013-04-10", "2013-04-09"), "line 3: date '2013-04-09', expected"),
    ],
)
def test_a_malformed_row_is_named_by_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    write(tmp_path / "2013-04-10.csv.gz", [HEADER, ROWS[0], bad, ROWS[2]])
    with pytest.raises(HistoryError) as caught:
        reader.load(duckdb.connect(), tmp_path)
    assert message in caught.value.detail
    assert caught.value.status_code == 400


def test_a_missing_required_column_is_named(tmp_path: Path) -> None:
    write(tmp_path / "2013-04-10.csv", ["date,model,failure", "2013-04-10,X,0"])
    with pytest.raises(HistoryError, match=r"2013-04-10.csv line 1: no column 'serial_number'"):
        reader.load(duckdb.connect(), tmp_path)


def test_no_history_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(HistoryNotFound):
        reader.load(duckdb.connect(), tmp_path / "absent")
    write(tmp_path / "2013-04-10.csv", [HEADER, ROWS[0]])
    with pytest.raises(HistoryNotFound, match="up to 2013-04-09"):
        reader.load(duckdb.connect(), tmp_path, as_of=date(2013, 4, 9))
