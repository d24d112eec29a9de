"""A mergeable quantile sketch (DDSketch: logarithmic buckets with relative-error guarantee).

Windows computed by different workers, or 10 s windows rolled into a minute, merge exactly by adding
bucket counts; any quantile is then within `relative_accuracy` of the true value."""

from __future__ import annotations

import math
from typing import Any

_log = math.log


class DDSketch:
    """Quantiles of positive values (non-positive values are counted in a zero bucket)."""

    __slots__ = ("_gamma_log", "bins", "count", "max", "min", "relative_accuracy", "sum", "zeros")

    def __init__(self, relative_accuracy: float = 0.01) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError("relative_accuracy must be between 0 and 1")
        self.relative_accuracy = relative_accuracy
        gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._gamma_log = math.log(gamma)
        self.bins: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float, weight: int = 1) -> None:
        self.count += weight
        self.sum += value * weight
        if value < self.min:  # what min() and max() decide, without their calls
            self.min = value
        if value > self.max:
            self.max = value
        if value <= 0:
            self.zeros += weight
            return
        key = math.ceil(_log(value) / self._gamma_log)
        bins = self.bins
        bins[key] = bins.get(key, 0) + weight

    def merge(self, other: DDSketch) -> None:
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError("cannot merge sketches of different accuracy")
        for key, n in other.bins.items():
            self.bins[key] = self.bins.get(key, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 <= q <= 1), or None for an empty sketch."""
        if self.count == 0:
            return None
        if not 0 <= q <= 1:
            raise ValueError("q must be between 0 and 1")
        rank = q * (self.count - 1)
        seen = self.zeros
        if rank < seen:
            return 0.0
        gamma = math.exp(self._gamma_log)
        for key in sorted(self.bins):
            seen += self.bins[key]
            if seen > rank:
                # the bucket (gamma^(k-1), gamma^k]: its midpoint in relative terms
                value = 2 * gamma**key / (gamma + 1)
                return min(max(value, self.min), self.max)
        return self.max

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.relative_accuracy,
            "bins": {str(k): v for k, v in self.bins.items()},
            "zeros": self.zeros,
            "count": self.count,
            "sum": self.sum,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DDSketch:
        sketch = cls(data["a"])
        sketch.bins = {int(k): int(v) for k, v in data["bins"].items()}
        sketch.zeros, sketch.count, sketch.sum = data["zeros"], data["count"], data["sum"]
        sketch.min = data["min"] if data["min"] is not None else math.inf
        sketch.max = data["max"] if data["max"] is not None else -math.inf
        return sketch
