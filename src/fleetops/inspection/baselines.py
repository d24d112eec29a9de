"""Per-model baselines from healthy machines, and the verdict on one machine against them.

A band is the median ± k·MAD of the healthy machines, widened to a minimum share of the median
so a very consistent model does not fail a machine on run-to-run noise. Every point is a
throughput, so only a figure below its band fails.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fleetops.inspection.enums import Outcome
from fleetops.inspection.probes import ProbeResult

Status = Literal[Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE]  # error: none to judge
MIN_SAMPLES = 5


@dataclass(frozen=True)
class Band:
    """The healthy range of one curve point."""

    median: float
    mad: float
    low: float
    high: float
    unit: str

    def describe(self, value: float) -> str:
        """Say where a value sits relative to this band, in percent of the median."""
        lo, hi = _pct(self.low / self.median), _pct(self.high / self.median)
        return f"{_pct(value / self.median)} % of the model's median (band {lo}–{hi} %)"


def _pct(ratio: float) -> str:
    """Whole percent, but two significant digits below 10 % so a collapse does not read as 0 %."""
    percent = ratio * 100
    return f"{percent:.0f}" if abs(percent) >= 10 else f"{percent:.2g}"


@dataclass(frozen=True)
class Baseline:
    """What healthy machines of one model measure on one probe."""

    probe: str
    samples: int
    bands: dict[str, Band]

    @classmethod
    def build(
        cls, results: Sequence[ProbeResult], *, k: float = 4.0, min_relative: float = 0.10
    ) -> Baseline:
        """Build bands over the points every result has; judge() wants at least 5 results."""
        if not results:
            raise ValueError("a baseline needs at least one result")
        probes = {r.probe for r in results}
        if len(probes) > 1:
            raise ValueError(f"results mix probes {sorted(probes)}; a baseline covers one probe")
        common = set.intersection(*(set(r.points) for r in results))
        bands = {
            name: _band([r.points[name] for r in results], results[0].units.get(name, ""), k,
                         min_relative)
            for name in results[0].points
            if name in common
        }  # fmt: skip
        return cls(probe=results[0].probe, samples=len(results), bands=bands)


def _band(values: list[float], unit: str, k: float, min_relative: float) -> Band:
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    half = max(k * mad, min_relative * median)
    # a throughput cannot go below zero; a band reaching that far cannot fail the point
    return Band(median=median, mad=mad, low=max(median - half, 0.0), high=median + half, unit=unit)


@dataclass(frozen=True)
class Verdict:
    """The judgement of one result: status, each point's ratio to the median, and why."""

    status: Status
    ratios: dict[str, float]
    reasons: list[str]


def judge(
    result: ProbeResult,
    baseline: Baseline,
    *,
    busy_load: float = 0.5,
    busy_cpu: float = 0.25,
    busy_steal: float = 0.05,
) -> Verdict:
    """Judge a result against its model's baseline; a busy machine or thin baseline is no proof.

    `busy_load` is the 1-minute load per CPU before the run, `busy_cpu` the busy share of the
    CPUs just before the tool started, `busy_steal` the hypervisor's share while it ran.
    """
    if result.probe != baseline.probe:
        raise ValueError(f"a {result.probe} result cannot be judged on a {baseline.probe} baseline")
    ratios = {
        name: result.points[name] / band.median
        for name, band in baseline.bands.items()
        if name in result.points and band.median > 0
    }
    doubts = _doubts(result, baseline, busy_load, busy_cpu, busy_steal)
    if doubts:
        return Verdict(status=Outcome.INCONCLUSIVE, ratios=ratios, reasons=doubts)
    by_ratio = sorted(ratios, key=lambda name: ratios[name])
    low = [name for name in by_ratio if result.points[name] < baseline.bands[name].low]
    if low:
        reasons = [f"{n}: {baseline.bands[n].describe(result.points[n])}" for n in low]
        return Verdict(status=Outcome.FAIL, ratios=ratios, reasons=reasons)
    worst = by_ratio[0] if by_ratio else None
    note = f"all {len(ratios)} points within their band"
    if worst is not None:
        note += f"; lowest {worst}: {baseline.bands[worst].describe(result.points[worst])}"
    return Verdict(status=Outcome.PASS, ratios=ratios, reasons=[note])


def _doubts(
    result: ProbeResult, baseline: Baseline, busy_load: float, busy_cpu: float, busy_steal: float
) -> list[str]:
    """Reasons the result cannot be judged, empty when it can."""
    doubts: list[str] = []
    if baseline.samples < MIN_SAMPLES:
        doubts.append(
            f"the baseline has {baseline.samples} healthy machines, at least {MIN_SAMPLES} needed"
        )
    missing = [name for name in baseline.bands if name not in result.points]
    if missing:
        doubts.append("the result lacks the point(s) " + ", ".join(missing))
    load = result.load
    per_cpu = load.load1_before / load.cpus
    if per_cpu > busy_load:
        doubts.append(
            f"the machine was busy: 1-minute load {load.load1_before:g} on {load.cpus} CPUs "
            f"({per_cpu:.2f} per CPU, limit {busy_load:g})"
        )
    if load.busy_before > busy_cpu:
        doubts.append(
            f"the machine was busy: CPUs {load.busy_before * 100:.0f} % busy before the probe "
            f"(limit {busy_cpu * 100:.0f} %)"
        )
    if load.steal_during > busy_steal:
        doubts.append(
            f"the hypervisor stole {load.steal_during * 100:.0f} % of CPU time during the probe "
            f"(limit {busy_steal * 100:.0f} %)"
        )
    return doubts
