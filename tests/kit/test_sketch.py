"""The quantile sketch keeps its relative-error promise, also after merging."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fleetops.kit.sketch import DDSketch


@pytest.mark.parametrize("dist", ["lognormal", "uniform", "pareto"])
def test_quantiles_within_relative_accuracy(dist: str) -> None:
    rng = random.Random(3)
    draw = {
        "lognormal": lambda: rng.lognormvariate(3, 1.2),
        "uniform": lambda: rng.uniform(1, 1000),
        "pareto": lambda: rng.paretovariate(1.5),
    }[dist]
    values = [draw() for _ in range(20_000)]
    sketch = DDSketch(0.01)
    for v in values:
        sketch.add(v)
    for q in (0.5, 0.9, 0.95, 0.99):
        true = float(np.quantile(values, q, method="lower"))
        got = sketch.quantile(q)
        assert got is not None
        assert abs(got - true) / true <= 0.011, (q, got, true)


def test_merge_equals_one_sketch_of_everything() -> None:
    rng = random.Random(5)
    a, b, whole = DDSketch(), DDSketch(), DDSketch()
    for i in range(5000):
        v = rng.expovariate(0.01)
        (a if i % 2 else b).add(v)
        whole.add(v)
    a.merge(b)
    assert a.bins == whole.bins
    assert a.count == whole.count
    assert a.quantile(0.99) == whole.quantile(0.99)
    restored = DDSketch.from_dict(a.to_dict())
    assert restored.quantile(0.5) == a.quantile(0.5)


def test_empty_and_zero() -> None:
    s = DDSketch()
    assert s.quantile(0.5) is None
    s.add(0)
    s.add(10)
    assert s.quantile(0) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        s.quantile(1.5)
