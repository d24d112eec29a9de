"""Features and labels on a tiny history, worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest

from fleetops.analytics.predict import features, reader

HEADER = "date,serial_number,model,failure,smart_5_raw,smart_9_raw,smart_197_raw"
DAYS = {
    "2013-04-10": ["A,M,0,0,100,0", "B,M,0,0,300,0"],
    "2013-04-11": ["A,M,0,2,101,0", "B,M,0,0,301,0"],
    "2013-04-12": ["A,M,1,5,102,1", "B,M,0,0,302,0"],
}


@pytest.fixture
def frame(tmp_path: Path) -> features.Frame:
    for day, lines in DAYS.items():
        rows = [f"{day},{line}" for line in lines]
        (tmp_path / f"{day}.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    db = duckdb.connect()
    reader.load(db, tmp_path)
    return features.build(db)


def value(frame: features.Frame, serial: str, day: int, name: str) -> float:
    rows = [i for i, s in enumerate(frame.serial) if s == serial]
    return float(frame.x[rows[day], frame.names.index(name)])


def test_counters_their_rise_and_slope(frame: features.Frame) -> None:
    assert value(frame, "A", 2, "log_raw_5") == pytest.approx(math.log(6))
    assert value(frame, "A", 2, "delta1_5") == 3  # 5 - 2
    assert value(frame, "A", 2, "delta7_5") == 5  # 5 - 0, the first day in the week
    assert value(frame, "A", 0, "ever_rose_5") == 0
    assert value(frame, "A", 1, "ever_rose_5") == 1
    assert value(frame, "A", 2, "ever_rose_197") == 1
    assert value(frame, "B", 2, "ever_rose_5") == 0
    # Least squares through (0, 0), (1, 2), (2, 5): covariance 5 over variance 2.
    assert value(frame, "A", 2, "slope7_5") == pytest.approx(2.5)


def test_values_relative_to_the_models_fleet(frame: features.Frame) -> None:
    # Hours 100 and 300: mean 200, population deviation 100.
    assert value(frame, "A", 0, "model_z_9") == pytest.approx(-1)
    assert value(frame, "B", 0, "model_z_9") == pytest.approx(1)
    # Pending sectors log(2) against 0: one above, one below.
    assert value(frame, "A", 2, "model_z_197") == pytest.approx(1)


def test_labels_are_failures_within_the_horizon(frame: features.Frame) -> None:
    labels = dict(zip(zip(frame.serial, frame.day, strict=True), frame.label(2), strict=True))
    first = int(frame.day.min())
    assert [labels[("A", first + d)] for d in range(3)] == [False, True, True]
    assert not any(labels[("B", first + d)] for d in range(3))
    # A failure after `known_until` is not known to training.
    assert not frame.label(2, known_until=first + 1).any()
