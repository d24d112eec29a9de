"""A weighted L2 logistic model in NumPy over signed-log, standardised features.

Failures are rare (a few hundred failing drive-days among hundreds of thousands), so both classes
weigh the same in the loss; the signed log tames counters that jump by thousands in a day. A
logistic model is small, fast and hard to overfit on a few dozen failures, which is all the
history usually holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Logistic:
    """Learned weights with the centring and scale of the training features."""

    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    bias: float

    def score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The failure probability (class-balanced, so a ranking, not a calibrated rate)."""
        import numpy as np

        z = (_squash(x) - self.mean) / self.scale
        return np.asarray(1.0 / (1.0 + np.exp(-(z @ self.weights + self.bias))), dtype=np.float64)


def _squash(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    import numpy as np

    return np.asarray(np.sign(x) * np.log1p(np.abs(x)), dtype=np.float64)


def fit(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.bool_],
    *,
    l2: float = 1e-2,
    steps: int = 400,
    rate: float = 0.05,
) -> Logistic:
    """Fit by full-batch Adam on the class-balanced log loss; ValueError without both classes."""
    import numpy as np

    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ValueError("the training days need both failing and surviving drives")
    s = _squash(x)
    mean = s.mean(axis=0)
    scale = s.std(axis=0)
    scale[scale == 0] = 1.0
    z = (s - mean) / scale
    target = y.astype(np.float64)
    weight = np.where(y, 0.5 / positives, 0.5 / (len(y) - positives))
    params = np.zeros(z.shape[1] + 1)
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    for t in range(1, steps + 1):
        p = 1.0 / (1.0 + np.exp(-(z @ params[:-1] + params[-1])))
        err = weight * (p - target)
        grad = np.append(z.T @ err + l2 * params[:-1], err.sum())
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        params -= rate * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return Logistic(mean=mean, scale=scale, weights=params[:-1], bias=float(params[-1]))
