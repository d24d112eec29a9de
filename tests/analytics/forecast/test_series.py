"""Reading and resampling a series: bad rows by line, duplicates, gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetops.analytics.forecast.exceptions import ForecastInputError
from fleetops.analytics.forecast.series import (
    auto_step,
    parse_duration,
    parse_timestamp,
    read_points,
    resample,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("timestamp,value\n0,1\n60,x\n", 3, "bad value 'x'"),
        ("timestamp,value\n0,1\nyesterday,2\n", 3, "bad timestamp 'yesterday'"),
        ("0,1\n60,1\n120,nan\n", 3, "not a finite number"),
        ("0,1\n60\n", 2, "expected 2 fields"),
        ("timestamp,value\n120,1\n60,2\n", 3, "rows must be in time order"),
        ("2014-01-01 00:05:00,1\n2014-01-01T00:00:00,2\n", 2, "time order"),
    ],
)
def test_bad_rows_are_named_by_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = write(tmp_path / "s.csv", text)
    with pytest.raises(ForecastInputError) as caught:
        read_points(path)
    assert caught.value.where == f"{path}:{line}"
    assert problem in caught.value.detail
    assert caught.value.detail.startswith(f"{path}:{line}: ")


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ForecastInputError, match="no data rows"):
        read_points(write(tmp_path / "e.csv", "timestamp,value\n"))
    with pytest.raises(ForecastInputError, match="No such file"):
        read_points(tmp_path / "absent.csv")


def test_timestamps_iso_and_epoch() -> None:
    assert parse_timestamp("1970-01-02 00:00:00") == 86400.0
    assert parse_timestamp("1970-01-02T01:00:00+01:00") == 86400.0
    assert parse_timestamp("86400") == 86400.0
    assert parse_timestamp("86400.5") == 86400.5
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("15m") == 900
    assert parse_duration("900") == 900
    for bad in ("0", "7x", "-1h", ""):
        with pytest.raises(ValueError, match="bad duration"):
            parse_duration(bad)


def test_duplicates_last_wins(tmp_path: Path) -> None:
    points = read_points(write(tmp_path / "d.csv", "0,1\n60,2\n60,5\n120,3\n"))
    assert points.values == [1.0, 5.0, 3.0]
    assert points.duplicates == 1


def test_resample_means_bins_and_fills_only_short_gaps(tmp_path: Path) -> None:
    # Minute step. Bin 0 holds 0 and 30 s (mean 2), bin 1: 4; then 2 empty bins (a 3-minute
    # hole, filled 6, 8 toward bin 4 = 10); then 5 empty bins (6 minutes, left missing).
    text = "0,1\n30,3\n60,4\n240,10\n600,20\n"
    series = resample(read_points(write(tmp_path / "g.csv", text)), step=60, max_gap=180)
    expected = [2, 4, 6, 8, 10, np.nan, np.nan, np.nan, np.nan, np.nan, 20]
    np.testing.assert_allclose(series.values, expected)
    assert (series.interpolated, series.missing) == (2, 5)
    assert series.start == 0.0
    assert series.stamp(10).isoformat() == "1970-01-01T00:10:00+00:00"


def test_auto_step_rounds_the_median_spacing_up(tmp_path: Path) -> None:
    stamps = "".join(f"{i * 290},1\n" for i in range(10))
    assert auto_step(read_points(write(tmp_path / "s.csv", stamps))) == 300
