"""Remote-write series as points: gauges as they are, cumulative counters as increases.

Prometheus sends a counter's running total (`http_requests_total 18342`). Stored as a gauge,
a window would hold the mean of that total: a line that only climbs, and jumps to zero when a
process restarts. So a series whose name ends in `_total`, `_count`, `_sum` or `_bucket` (the
names the Prometheus conventions give cumulative series) is stored as a count: each sample
adds its increase over the series' previous sample (the whole value after a reset, as
`rate()` does), and a window shows the rate per second. The first sample fleetops sees of a
series only sets the baseline. The previous sample is remembered per server process across
requests (a bounded table), since Prometheus usually sends one sample per series per request.

Samples that cannot be stored are skipped and counted by reason, never refused: a 4xx would
make Prometheus drop the whole batch, the good samples with it.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import ValidationError

from fleetops.metrics import service
from fleetops.metrics.ingest.remote_write import WireSeries
from fleetops.metrics.schemas import MetricPoint

CUMULATIVE_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
MAX_VALUE = 1e15  # as the JSON push
SeriesKey = tuple[str, str]  # (name, "k=v,k=v")
Last = tuple[int, float]  # (milliseconds, value)


def is_cumulative(name: str) -> bool:
    return name.endswith(CUMULATIVE_SUFFIXES)


class LastSamples:
    """Each cumulative series' latest sample, at most `limit` series (the oldest updated is
    forgotten first: its next sample sets a new baseline). Shared by concurrent requests."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._last: dict[SeriesKey, Last] = {}
        self._lock = threading.Lock()

    def get(self, key: SeriesKey) -> Last | None:
        with self._lock:
            return self._last.get(key)

    def update(self, latest: dict[SeriesKey, Last]) -> None:
        with self._lock:
            for key, sample in latest.items():
                self._last.pop(key, None)
                self._last[key] = sample
            while len(self._last) > self.limit:
                del self._last[next(iter(self._last))]


@dataclass
class Converted:
    points: list[MetricPoint] = field(default_factory=list)
    stored: int = 0  # of the points, once recorded
    latest: dict[SeriesKey, Last] = field(default_factory=dict)  # apply once stored
    skipped: Counter[str] = field(default_factory=Counter)  # samples, by reason
    examples: dict[str, str] = field(default_factory=dict)  # a metric name per reason

    def skip(self, reason: str, name: str, samples: int = 1) -> None:
        self.skipped[reason] += samples
        self.examples.setdefault(reason, name or "(no __name__)")


def to_points(series: list[WireSeries], *, last: LastSamples, now: datetime) -> Converted:
    """The points to store for `series`, and what was skipped and why."""
    out = Converted()
    for one in series:
        labels = dict(one.labels)
        name = labels.pop("__name__", "")
        if not _storable(name, labels, out, len(one.samples)):
            continue
        usable: list[tuple[int, float, datetime]] = []
        for stamp, value in sorted(one.samples):
            moment = datetime.fromtimestamp(stamp / 1000, UTC)
            if not math.isfinite(value):
                out.skip("not a finite number (NaN: a staleness marker, an empty summary)", name)
            elif not service.in_time_range(moment, now):
                out.skip("more than 8 days old or 5 minutes ahead", name)
            elif abs(value) > MAX_VALUE:
                out.skip("beyond +-10^15", name)
            else:
                usable.append((stamp, value, moment))
        if is_cumulative(name):
            _increases(name, labels, usable, last, out)
        else:
            out.points += [_point(name, v, m, "gauge", labels) for _, v, m in usable]
    return out


def _storable(name: str, labels: dict[str, str], out: Converted, samples: int) -> bool:
    """Whether the push path would take this name and these labels; else skip the series."""
    if any("\x00" in text for pair in labels.items() for text in pair):
        out.skip("a NUL character in a label", name, samples)  # PostgreSQL cannot store it
        return False
    try:
        MetricPoint(name=name, value=0, labels=labels)
    except ValidationError as exc:
        field_name = str(exc.errors()[0]["loc"][0])
        reason = "a name fleetops cannot store" if field_name == "name" else "labels out of bounds"
        out.skip(reason, name, samples)
        return False
    return True


def _increases(
    name: str,
    labels: dict[str, str],
    usable: list[tuple[int, float, datetime]],
    last: LastSamples,
    out: Converted,
) -> None:
    key = (name, service.series_key(labels))
    previous = out.latest.get(key) or last.get(key)
    for stamp, value, moment in usable:
        if previous is not None and stamp <= previous[0]:
            out.skip("not newer than the series' last sample (a resend)", name)
            continue
        if previous is not None:
            increase = value - previous[1] if value >= previous[1] else value  # a reset
            if increase >= 0:
                out.points.append(_point(name, increase, moment, "count", labels))
            else:  # a `_sum` of negative observations: no rate to give
                out.skip("a cumulative value below zero", name)
        previous = (stamp, value)
    if previous is not None:
        out.latest[key] = previous


def _point(
    name: str,
    value: float,
    moment: datetime,
    kind: Literal["gauge", "count"],
    labels: dict[str, str],
) -> MetricPoint:
    # name, labels and value are checked above: no second validation per sample
    return MetricPoint.model_construct(
        name=name, value=value, time=moment, kind=kind, labels=labels
    )
