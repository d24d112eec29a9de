"""Drive-level precision, recall and lead time of daily flags, and the threshold that sets them.

A drive counts once. It is a hit when it fails within the window and was flagged on some day at
most `horizon - 1` days before its failure (the failure day included); its lead is the failure
day minus the first such flag. Every other flagged drive is a false alarm, including a drive
flagged near the end of the window that fails after it: the history cannot tell, so precision
errs low, never high.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

TARGET_PRECISION = 0.2
LEAD_DAYS = 7


@dataclass(frozen=True, slots=True)
class Outcome:
    """What flags achieved over a window, counted per drive."""

    failures: int
    flagged: int
    hits: int
    leads: tuple[int, ...]

    @property
    def precision(self) -> float:
        return self.hits / self.flagged if self.flagged else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.failures if self.failures else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The figures a report shows, rounded for reading."""
        leads = sorted(self.leads)
        return {
            "failures": self.failures,
            "flagged_drives": self.flagged,
            "hits": self.hits,
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "median_lead_days": leads[len(leads) // 2] if leads else None,
            "hits_with_lead_7_days": sum(1 for lead in leads if lead >= LEAD_DAYS),
        }


def outcome(
    drive: npt.NDArray[Any],
    day: npt.NDArray[np.int64],
    fail_day: npt.NDArray[np.int64],
    flag: npt.NDArray[np.bool_],
    *,
    horizon: int,
) -> Outcome:
    """Score daily flags (one row per drive and day of the window) per drive."""
    window_end = int(day.max()) if len(day) else -1
    failing = {d for d, f in zip(drive, fail_day, strict=True) if 0 <= f <= window_end}
    flagged: set[Any] = set()
    first_hit: dict[Any, int] = {}
    for d, today, f in zip(drive[flag], day[flag], fail_day[flag], strict=True):
        flagged.add(d)
        if 0 <= f - today < horizon and (d not in first_hit or today < first_hit[d]):
            first_hit[d] = int(today)
    leads = tuple(int(f) - first_hit[d] for d, f in _failure_days(drive, fail_day, first_hit))
    return Outcome(failures=len(failing), flagged=len(flagged), hits=len(first_hit), leads=leads)


def _failure_days(
    drive: npt.NDArray[Any], fail_day: npt.NDArray[np.int64], hits: dict[Any, int]
) -> list[tuple[Any, int]]:
    seen: dict[Any, int] = {}
    for d, f in zip(drive, fail_day, strict=True):
        if d in hits:
            seen[d] = int(f)
    return sorted(seen.items())


def choose_threshold(
    drive: npt.NDArray[Any],
    day: npt.NDArray[np.int64],
    fail_day: npt.NDArray[np.int64],
    score: npt.NDArray[np.float64],
    *,
    horizon: int,
) -> float:
    """The lowest score whose flags keep drive-level precision at TARGET_PRECISION on these
    (training) days, so recall is as high as that precision allows; the best F1 if none does."""
    import numpy as np

    codes, index = np.unique(drive, return_inverse=True)
    top = np.zeros(len(codes))
    np.maximum.at(top, index, score)  # a drive is flagged once its best day passes
    ahead = fail_day - day
    in_reach = (fail_day >= 0) & (ahead >= 0) & (ahead < horizon)
    reach = np.full(len(codes), -1.0)
    np.maximum.at(reach, index[in_reach], score[in_reach])  # ... and a hit if a day in reach does
    failing = np.zeros(len(codes), dtype=bool)
    failing[index[(fail_day >= 0) & (fail_day <= day.max())]] = True
    candidates = np.unique(top)[::-1]
    flagged = np.searchsorted(np.sort(-top), -candidates, side="right")
    hits = np.searchsorted(np.sort(-reach[failing]), -candidates, side="right")
    precision = hits / np.maximum(flagged, 1)
    recall = hits / max(int(failing.sum()), 1)
    ok = (precision >= TARGET_PRECISION) & (hits > 0)
    if ok.any():
        return float(candidates[ok].min())
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(candidates[int(np.argmax(f1))])
