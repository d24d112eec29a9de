"""Drive-level precision, recall and lead time on a hand-made case."""

from __future__ import annotations

import numpy as np

from fleetops.analytics.predict.scoring import choose_threshold, outcome

# Four drives over days 0..9. "f1" fails on day 9, "f2" on day 4, "ok1" and "ok2" survive.
DRIVES = ["f1"] * 10 + ["f2"] * 5 + ["ok1"] * 10 + ["ok2"] * 10
DAYS = list(range(10)) + list(range(5)) + list(range(10)) * 2
FAIL = [9] * 10 + [4] * 5 + [-1] * 20


def flags(on: dict[str, set[int]]) -> np.ndarray:
    return np.array([d in on.get(s, set()) for s, d in zip(DRIVES, DAYS, strict=True)])


def run(on: dict[str, set[int]], horizon: int = 5) -> dict[str, object]:
    arrays = np.array(DRIVES), np.array(DAYS), np.array(FAIL)
    return outcome(*arrays, flags(on), horizon=horizon).as_dict()


def test_hits_false_alarms_and_lead() -> None:
    # f1 flagged on day 2 (7 days early: outside a 5-day horizon) and day 6 (lead 3);
    # f2 never; ok1 flagged once: a false alarm.
    result = run({"f1": {2, 6}, "ok1": {3}})
    assert result == {
        "failures": 2,
        "flagged_drives": 2,
        "hits": 1,
        "precision": 0.5,
        "recall": 0.5,
        "median_lead_days": 3,
        "hits_with_lead_7_days": 0,
    }


def test_a_long_horizon_counts_the_early_flag_and_its_lead() -> None:
    result = run({"f1": {2, 6}, "f2": {4}, "ok1": {3}, "ok2": {0}}, horizon=14)
    assert result["hits"] == 2
    assert result["precision"] == 0.5
    assert result["recall"] == 1.0
    assert result["hits_with_lead_7_days"] == 1  # f1: day 9 - day 2
    assert result["median_lead_days"] == 7  # leads 0 (f2) and 7 (f1): the upper middle


def test_threshold_keeps_precision_at_the_target() -> None:
    # One day; "f" fails that day and scores 0.9, "a" 0.8, eight more 0.5: at 0.5 precision is
    # 1/10, at 0.8 it is 1/2: the lowest threshold with precision >= 0.2 is 0.8.
    drives = np.array(["f", "a", *[f"b{i}" for i in range(8)]])
    days = np.zeros(10, dtype=np.int64)
    fail = np.array([0] + [-1] * 9)
    score = np.array([0.9, 0.8] + [0.5] * 8)
    assert choose_threshold(drives, days, fail, score, horizon=5) == 0.8
    # Without any false alarm the lowest score already keeps precision: every drive flagged.
    assert choose_threshold(drives[:1], days[:1], fail[:1], score[:1], horizon=5) == 0.9
