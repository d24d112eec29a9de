"""The Numenta Anomaly Benchmark's scoring, written from its published description.

Sources: Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms - the Numenta Anomaly
Benchmark", ICMLA 2015 (section "Scoring", below "the paper") and the benchmark's README and
wiki ("the docs"). Rule by rule:

* Windows (paper): each labelled anomaly sits in a window of timestamps, here read from
  `labels/combined_windows.json`; a row is inside when `start <= timestamp <= end`.
* Probationary period (paper): the first 15 % of each file's rows is for learning; detections
  there are ignored. As in the docs' reference scorer it is at most 750 rows (15 % of 5,000),
  which binds only on files longer than 5,000 rows.
* First detection only (paper): within a window only the earliest detection counts; later ones
  in the same window count for nothing.
* Scaled sigmoid (paper, eq. 1): `sigma(y) = 2 / (1 + exp(5 y)) - 1` of the relative position
  `y`. The paper folds the weights into it; following the docs, a true positive is
  `A_TP * sigma(y) / sigma(-1)` with `y = -(end - i + 1) / width`, so exactly `A_TP` at the
  window's first row and near 0 at its last.
* False positives (paper and docs): a detection outside every window weighs `A_FP * sigma(y)`,
  negative, with `y = (i - end) / width` its distance after the last window that ended, in that
  window's widths; from 3 widths on, and before any window, the weight is the full `-A_FP`.
* Missed windows (paper, eq. 2): each window without a counted detection adds `-A_FN`.
* Profiles (docs): standard, reward_low_FP_rate and reward_low_FN_rate are the cost matrices of
  `config/profiles.json` (`tpWeight`, `fpWeight`, `fnWeight`).
* Threshold (paper and docs): one threshold on the detector's anomaly score per profile, for
  every file, chosen to maximise the raw score over the whole corpus; a row is a detection when
  `score >= threshold`.
* Normalisation (paper, eq. 3): `100 * (S - S_null) / (S_perfect - S_null)`, where the null
  detector never detects (`S_null = -A_FN * windows`) and the perfect one detects at every
  window's first row (`S_perfect = A_TP * windows`).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

PROBATION_FRACTION = 0.15
PROBATION_CAP = 5000  # rows: a longer file learns for 750 rows, as the reference scorer does
FAR_AFTER = 3.0  # window widths after which a false positive is penalised fully


@dataclass(frozen=True)
class Costs:
    """One application profile's cost matrix: rewards and penalties, all non-negative."""

    tp: float
    fp: float
    fn: float


@dataclass(frozen=True)
class LabelledFile:
    """A scored series: its row count and its windows as inclusive row ranges."""

    name: str
    length: int
    windows: tuple[tuple[int, int], ...]

    @property
    def probation(self) -> int:
        """Rows at the start whose detections are ignored."""
        return probation_length(self.length)


@dataclass(frozen=True)
class Outcome:
    """A raw score and the counts behind it."""

    score: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class Sweep:
    """The best threshold for one profile and what it scores (threshold None: never detect)."""

    threshold: float | None
    outcome: Outcome


def probation_length(length: int) -> int:
    """Rows of a `length`-row file in its probationary period: 15 %, at most 15 % of 5,000."""
    return min(
        math.floor(PROBATION_FRACTION * length), math.floor(PROBATION_FRACTION * PROBATION_CAP)
    )


def scaled_sigmoid(y: float) -> float:
    """NAB's weight for relative position `y`: ~1 well before 0, 0 at 0, -1 from 3 on."""
    if y > FAR_AFTER:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def window_rows(
    timestamps: Sequence[datetime], windows: Iterable[tuple[datetime, datetime]]
) -> list[tuple[int, int] | None]:
    """Map each time window to its inclusive row range (None when no row falls inside)."""
    rows: list[tuple[int, int] | None] = []
    for start, end in windows:
        lo, hi = bisect_left(timestamps, start), bisect_right(timestamps, end) - 1
        rows.append((lo, hi) if lo <= hi else None)
    return rows


def point_weights(file: LabelledFile, costs: Costs) -> list[tuple[float, int]]:
    """Each row's weight if detected, with its window's index (-1 outside every window)."""
    weights: list[tuple[float, int]] = []
    top = scaled_sigmoid(-1.0)
    previous: tuple[int, int] | None = None
    index = 0
    for i in range(file.length):
        while index < len(file.windows) and file.windows[index][1] < i:
            previous = file.windows[index]
            index += 1
        inside = index < len(file.windows) and file.windows[index][0] <= i
        if inside:
            start, end = file.windows[index]
            y = -(end - i + 1) / (end - start + 1)
            weights.append((costs.tp * scaled_sigmoid(y) / top, index))
        elif previous is None:
            weights.append((-costs.fp, -1))
        else:
            start, end = previous
            weights.append((costs.fp * scaled_sigmoid((i - end) / (end - start + 1)), -1))
    return weights


def score_detections(file: LabelledFile, detected: Iterable[int], costs: Costs) -> Outcome:
    """Score one file's detections (row indices), ignoring those in the probationary period."""
    weights = point_weights(file, costs)
    counted: set[int] = set()
    score, fp = 0.0, 0
    for i in sorted(set(detected)):
        if i < file.probation or i >= file.length:
            continue
        weight, window = weights[i]
        if window < 0:
            score += weight
            fp += 1
        elif window not in counted:
            counted.add(window)
            score += weight
    missed = len(file.windows) - len(counted)
    return Outcome(score=score - costs.fn * missed, tp=len(counted), fp=fp, fn=missed)


def sweep(files: Sequence[LabelledFile], scores: Sequence[Sequence[float]], costs: Costs) -> Sweep:
    """Find the one threshold that maximises the corpus's raw score under `costs`.

    Lowering the threshold adds detections in descending score order; a false positive adds its
    own weight and a true positive can only move its window's first detection earlier, so the
    total is updated in O(1) per point and every distinct threshold is evaluated exactly."""
    points: list[tuple[float, float, int, int, int]] = []  # score, weight, file, window, row
    for f, (file, series) in enumerate(zip(files, scores, strict=True)):
        for i, (weight, window) in enumerate(point_weights(file, costs)):
            if i >= file.probation:
                points.append((series[i], weight, f, window, i))
    points.sort(key=lambda p: -p[0])
    windows = sum(len(file.windows) for file in files)
    first: dict[tuple[int, int], tuple[int, float]] = {}
    total, fp = -costs.fn * windows, 0
    best = Sweep(None, Outcome(total, 0, 0, windows))
    for n, (score, weight, f, window, row) in enumerate(points):
        if window < 0:
            total, fp = total + weight, fp + 1
        elif (f, window) not in first:
            first[(f, window)] = (row, weight)
            total += weight + costs.fn
        elif row < first[(f, window)][0]:
            total += weight - first[(f, window)][1]
            first[(f, window)] = (row, weight)
        last_of_tie = n + 1 == len(points) or points[n + 1][0] != score
        if last_of_tie and total > best.outcome.score + 1e-12:
            best = Sweep(score, Outcome(total, len(first), fp, windows - len(first)))
    return best


def null_score(windows: int, costs: Costs) -> float:
    """The raw score of a detector that never detects."""
    return -costs.fn * windows


def perfect_score(windows: int, costs: Costs) -> float:
    """The raw score of a detector that detects at each window's first row."""
    return costs.tp * windows


def normalise(raw: float, windows: int, costs: Costs) -> float:
    """Map a raw score to NAB's scale: 0 for the null detector, 100 for the perfect one."""
    low, high = null_score(windows, costs), perfect_score(windows, costs)
    if high == low:
        raise ValueError("a corpus without windows cannot be normalised")
    return 100.0 * (raw - low) / (high - low)
