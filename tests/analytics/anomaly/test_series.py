"""Series and corpus reading: every bad input names its file and line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from fleetops.analytics.anomaly.corpus import load_corpus, load_profiles
from fleetops.analytics.anomaly.exceptions import SeriesError
from fleetops.analytics.anomaly.series import read_series


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_reads_rows_keeping_duplicates_and_gaps(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.csv",
        "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:00:00,2\n2014-01-01 03:00:00,3.5\n",
    )
    series = read_series(path)
    assert series.values == [1.0, 2.0, 3.5]
    assert series.timestamps[2] == datetime(2014, 1, 1, 3)


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("2014-01-01 00:00:00,1\n2014-01-01 00:05:00,x\n", 3, "bad value 'x'"),
        ("2014-01-01 00:00:00,1\nyesterday,2\n", 3, "bad timestamp 'yesterday'"),
        ("2014-01-01 00:00:00,1\n2014-01-01 00:05:00\n", 3, "expected 2 fields"),
        ("2014-01-01 00:00:00,nan\n", 2, "not a finite number"),
        ("2014-01-01 00:05:00,1\n2014-01-01 00:00:00,2\n", 3, "rows must be in time order"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path: Path, body: str, line: int, problem: str) -> None:
    path = write(tmp_path / "s.csv", "timestamp,value\n" + body)
    with pytest.raises(SeriesError) as caught:
        read_series(path)
    assert caught.value.where == f"{path}:{line}"
    assert problem in str(caught.value)


def test_bad_header_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match="header"):
        read_series(write(tmp_path / "a.csv", "time,v\n2014-01-01,1\n"))
    with pytest.raises(SeriesError, match="no rows"):
        read_series(write(tmp_path / "b.csv", "timestamp,value\n"))


def test_unlabelled_series_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "data/c/s.csv", "timestamp,value\n2014-01-01 00:00:00,1\n")
    labels = write(tmp_path / "labels.json", json.dumps({"c/other.csv": []}))
    with pytest.raises(SeriesError, match=r"c/s\.csv has no entry"):
        load_corpus(tmp_path / "data", labels)


def test_window_outside_the_series_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "data/c/s.csv", "timestamp,value\n2014-01-01 00:00:00,1\n")
    windows = {"c/s.csv": [["2015-01-01 00:00:00.000000", "2015-01-02 00:00:00.000000"]]}
    labels = write(tmp_path / "labels.json", json.dumps(windows))
    with pytest.raises(SeriesError, match="has no rows"):
        load_corpus(tmp_path / "data", labels)


def test_bad_json_and_bad_profile_name_the_file(tmp_path: Path) -> None:
    bad = write(tmp_path / "p.json", "{\n  oops")
    with pytest.raises(SeriesError) as caught:
        load_profiles(bad)
    assert caught.value.where == f"{bad}:2"
    missing = write(tmp_path / "q.json", json.dumps({"standard": {"CostMatrix": {}}}))
    with pytest.raises(SeriesError, match="profile 'standard'"):
        load_profiles(missing)
