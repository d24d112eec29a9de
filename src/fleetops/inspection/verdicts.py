"""What judging a result needs besides its baseline: the busy limits and stored runs as results.

Baselines and the recording of results both ask whether a machine was quiet when measured, so
the load limits and the conversion of a stored `ProbeRun` live here, below both of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fleetops.inspection.baselines import MIN_SAMPLES, Baseline, judge
from fleetops.inspection.enums import Outcome
from fleetops.inspection.probes import LoadSample, ProbeResult
from fleetops.models import ProbeRun


@dataclass(frozen=True)
class LoadLimits:
    """Overrides of judge()'s busy limits; None keeps judge's own default."""

    busy_load: float | None = None
    busy_cpu: float | None = None
    busy_steal: float | None = None

    def kwargs(self) -> dict[str, float]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def to_result(run: ProbeRun) -> ProbeResult:
    """A stored run back as the probe's result."""
    return ProbeResult(
        probe=run.probe,
        tool_version=run.tool_version or None,
        points=dict(run.points),
        units=dict(run.units),
        load=LoadSample(**run.load),
    )


def busy_reasons(result: ProbeResult, limits: LoadLimits | None = None) -> list[str]:
    """Why judge() would call the result's machine busy; empty when it was quiet."""
    # Judged on an empty baseline of enough samples, only the load can make it inconclusive.
    empty = Baseline(probe=result.probe, samples=MIN_SAMPLES, bands={})
    verdict = judge(result, empty, **(limits or LoadLimits()).kwargs())
    return verdict.reasons if verdict.status == Outcome.INCONCLUSIVE else []
