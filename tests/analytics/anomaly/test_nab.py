"""The scorer's arithmetic on hand-made files, then null = 0 and perfect = 100 on real NAB data."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fleetops.analytics.anomaly.corpus import load_corpus, load_profiles
from fleetops.analytics.anomaly.nab import (
    Costs,
    LabelledFile,
    normalise,
    scaled_sigmoid,
    score_detections,
    sweep,
)

NAB = Path(__file__).resolve().parents[4] / "shared" / "data" / "nab"
if not NAB.is_dir():
    NAB = Path("/work/shared/data/nab")
STANDARD = Costs(tp=1.0, fp=0.11, fn=1.0)

# 100 rows: probation is rows 0..14; one window of 10 rows at 40..49.
FILE = LabelledFile("f.csv", 100, ((40, 49),))


def sigma(y: float) -> float:
    return 2 / (1 + math.exp(5 * y)) - 1


def test_probation_is_the_first_15_percent() -> None:
    assert FILE.probation == 15


def test_detection_at_window_start_earns_a_tp() -> None:
    outcome = score_detections(FILE, [40], STANDARD)
    assert outcome.score == pytest.approx(1.0)
    assert (outcome.tp, outcome.fp, outcome.fn) == (1, 0, 0)


def test_only_the_first_detection_in_a_window_counts() -> None:
    # row 45 is 6th of 10: y = -(49 - 45 + 1) / 10 = -0.5
    expected = sigma(-0.5) / sigma(-1.0)
    assert score_detections(FILE, [45, 47, 49], STANDARD).score == pytest.approx(expected)


def test_detection_at_window_end_is_worth_almost_nothing() -> None:
    assert score_detections(FILE, [49], STANDARD).score == pytest.approx(sigma(-0.1) / sigma(-1.0))
    assert 0 < sigma(-0.1) / sigma(-1.0) < 0.3


def test_detections_in_probation_are_ignored_and_the_window_is_missed() -> None:
    outcome = score_detections(FILE, [0, 5, 14], STANDARD)
    assert outcome.score == pytest.approx(-1.0)
    assert (outcome.tp, outcome.fp, outcome.fn) == (0, 0, 1)


def test_false_positive_before_any_window_costs_a_fp() -> None:
    outcome = score_detections(FILE, [20, 40], STANDARD)
    assert outcome.score == pytest.approx(1.0 - 0.11)


def test_late_false_positive_weighted_by_its_distance_after_the_window() -> None:
    # row 54 is 5 rows after the window's end, half a window width: y = 0.5
    outcome = score_detections(FILE, [40, 54], STANDARD)
    assert outcome.score == pytest.approx(1.0 + 0.11 * sigma(0.5))
    assert 0.11 * sigma(0.5) == pytest.approx(-0.11 * 0.8483, abs=1e-4)
    # more than three widths after: the full penalty
    assert score_detections(FILE, [40, 90], STANDARD).score == pytest.approx(1.0 - 0.11)


def test_scaled_sigmoid_shape() -> None:
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.5) == -1.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)


def test_sweep_picks_the_threshold_that_scores_best() -> None:
    # 0.9 at the window's start, 0.8 on a far false positive, 0.1 elsewhere
    scores = [0.1] * 100
    scores[41], scores[90] = 0.9, 0.8
    best = sweep([FILE], [scores], STANDARD)
    assert best.threshold == 0.9
    assert best.outcome.score == pytest.approx(sigma(-0.9) / sigma(-1.0))
    # detecting every row: the window counts once, from its first row, and 75 rows are false
    # positives, 25 before the window and 50 after it
    everything = score_detections(FILE, range(100), STANDARD)
    after = sum(0.11 * sigma((i - 49) / 10) if i - 49 <= 30 else -0.11 for i in range(50, 100))
    assert everything.score == pytest.approx(1.0 - 0.11 * 25 + after)
    assert (everything.tp, everything.fp) == (1, 75)
    # which scores below never detecting, so the sweep keeps the null detector
    assert sweep([FILE], [[1.0] * 100], STANDARD).threshold is None


def test_sweep_with_nothing_worth_detecting_keeps_the_null_score() -> None:
    scores = [0.0] * 100
    scores[20] = 1.0  # a false positive only
    best = sweep([FILE], [scores], STANDARD)
    assert best.threshold is None
    assert best.outcome.score == pytest.approx(-1.0)


def test_normalise_maps_null_to_0_and_perfect_to_100() -> None:
    assert normalise(-3.0, 3, STANDARD) == 0.0
    assert normalise(3.0, 3, STANDARD) == 100.0
    assert normalise(0.0, 3, Costs(tp=1.0, fp=0.11, fn=2.0)) == pytest.approx(200 / 3)


@pytest.fixture(scope="module")
def corpus():  # type: ignore[no-untyped-def]
    if not (NAB / "data").is_dir():
        pytest.skip(f"NAB data not found at {NAB}")
    return load_corpus(NAB / "data", NAB / "labels" / "combined_windows.json")


@pytest.mark.parametrize("profile", ["standard", "reward_low_FP_rate", "reward_low_FN_rate"])
def test_null_and_perfect_detectors_on_real_nab(corpus, profile: str) -> None:  # type: ignore[no-untyped-def]
    costs = load_profiles(NAB / "config" / "profiles.json")[profile]
    files = [c.labelled for c in corpus]
    windows = sum(len(f.windows) for f in files)
    assert windows > 0
    assert all(f.windows[0][0] >= f.probation for f in files if f.windows)
    null = sweep(files, [[0.0] * f.length for f in files], costs)
    perfect_scores = []
    for f in files:
        row = [0.0] * f.length
        for start, _ in f.windows:
            row[start] = 1.0
        perfect_scores.append(row)
    perfect = sweep(files, perfect_scores, costs)
    assert null.outcome.fn == windows
    assert normalise(null.outcome.score, windows, costs) == pytest.approx(0.0)
    assert perfect.outcome.tp == windows
    assert perfect.outcome.fp == 0
    assert normalise(perfect.outcome.score, windows, costs) == pytest.approx(100.0)
