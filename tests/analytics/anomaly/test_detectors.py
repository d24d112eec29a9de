"""The streaming detector: scores in [0, 1], spikes and shifts stand out, constant memory."""

from __future__ import annotations

import math
import random

from fleetops.analytics.anomaly.detectors import StreamingDetector, score_series


def noisy(n: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [50 + 10 * math.sin(i / 20) + rng.gauss(0, 1) for i in range(n)]


def test_scores_are_in_unit_interval_and_warmup_is_silent() -> None:
    scores = score_series(noisy(2000))
    assert all(0.0 <= s < 1.0 for s in scores)
    assert scores[:64] == [0.0] * 64


def test_a_spike_scores_above_everything_before_it() -> None:
    values = noisy(2000)
    values[1500] += 40
    scores = score_series(values)
    assert scores[1500] > max(scores[100:1500])
    assert scores[1500] > 0.5


def test_a_level_shift_is_noticed_within_a_few_points() -> None:
    values = noisy(2000)
    shifted = values[:1500] + [v + 25 for v in values[1500:]]
    scores = score_series(shifted)
    assert max(scores[1500:1505]) > max(scores[100:1500])


def test_flat_series_scores_zero_until_it_moves() -> None:
    scores = score_series([5.0] * 500 + [6.0])
    assert max(scores[:500]) == 0.0
    assert scores[500] > 0.5


def test_memory_is_bounded_by_the_window() -> None:
    detector = StreamingDetector(window=32)
    for v in noisy(5000):
        detector.update(v)
    assert len(detector.recent) == 32
