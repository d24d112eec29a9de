"""fleetops' streaming anomaly detector: constant time and memory per point, scores in [0, 1].

Three views of each new value, each a distance; the score is the largest of their surprises:

* surprise: distance from a robust EWMA level, in units of an EWMA of absolute deviation (the
  update is clipped, so one spike neither drags the level nor inflates the deviation for long);
* novelty: distance to the nearest of the last `window` values, relative to their spread (a
  1-nearest-neighbour score on a bounded window, so a value never seen recently stands out even
  when the deviation estimate is wide);
* shift: a fast EWMA drifting from the slow one, for level changes that no single point shows.

Each distance is judged against the series' own history of that distance (a z-score of its
logarithm against an EWMA mean and variance), so a series that always jumps does not always
alarm; the largest z maps to `z / (z + 4)` in [0, 1). While an anomaly is being reported
(the z is below a slowly decaying recent peak), the score is halved: only a larger one is news,
which keeps one long anomaly from reading as a train of false positives after its window.

Each point costs O(window) with `window` fixed, so O(1) per point and per series; state is a few
floats and a bounded deque. The first `warmup` points score 0 while the estimates settle.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable


class _Surprise:
    """How unusual a raw distance is for this series: its z-score against an EWMA of past ones.

    Raw distances differ by orders of magnitude between series (a flat disk counter against a
    noisy CPU), so each view is judged against its own history, on a log scale."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.mean = 0.0
        self.var = 1.0

    def z(self, distance: float) -> float:
        """Score `distance`, then learn it."""
        x = math.log1p(max(distance, 0.0))
        z = (x - self.mean) / math.sqrt(max(self.var, 1e-6))
        delta = x - self.mean
        self.mean += self.rate * delta
        self.var = (1 - self.rate) * (self.var + self.rate * delta * delta)
        return z


class StreamingDetector:
    """Score one series point by point; keep one instance per series."""

    def __init__(
        self, *, window: int = 64, slow: float = 0.01, fast: float = 0.15, warmup: int = 64
    ) -> None:
        self.recent: deque[float] = deque(maxlen=window)
        self.slow, self.fast, self.warmup = slow, fast, warmup
        self.recovery, self.echo = 0.99, 0.5
        self.views = (_Surprise(0.005), _Surprise(0.005), _Surprise(0.005))
        self.level = self.quick = self.deviation = 0.0
        self.seen = 0
        self.peak = 0.0

    def update(self, value: float) -> float:
        """Score `value` against what came before it, then learn from it."""
        z = self._z(value) if self.seen >= 2 else 0.0
        self._learn(value)
        if self.seen <= self.warmup or z <= 0:
            return 0.0
        # an anomaly that is already being reported: only a larger one is news
        fresh, self.peak = z > self.peak, max(z, self.peak * self.recovery)
        if not fresh:
            z *= self.echo
        # rational, not a normal CDF: large z stay distinct instead of all rounding to 1.0
        return z / (z + 4.0)

    def _floor(self) -> float:
        # a flat series has no deviation; measure against a sliver of its level instead
        return max(self.deviation, 1e-3 * abs(self.level), 1e-9)

    def _z(self, value: float) -> float:
        unit = self._floor()
        spread = max(self.recent) - min(self.recent)
        nearest = min(abs(value - seen) for seen in self.recent)
        distances = (
            abs(value - self.level) / unit,
            nearest / max(spread, unit),
            abs(self.quick - self.level) / unit,
        )
        return max(view.z(d) for view, d in zip(self.views, distances, strict=True))

    def _learn(self, value: float) -> None:
        if self.seen == 0:
            self.level = self.quick = value
        unit = self._floor()
        step = max(-4.0 * unit, min(4.0 * unit, value - self.level))
        self.level += self.slow * step
        self.quick += self.fast * (value - self.quick)
        error = min(abs(value - self.level), 6.0 * unit) if self.seen else 0.0
        rate = max(self.slow, 1.0 / (self.seen + 1))
        self.deviation += rate * (error - self.deviation)
        self.recent.append(value)
        self.seen += 1


def score_series(values: Iterable[float]) -> list[float]:
    """Score a whole series in order with a fresh detector."""
    detector = StreamingDetector()
    return [detector.update(v) for v in values]
