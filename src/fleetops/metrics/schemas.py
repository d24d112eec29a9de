"""What a pusher sends and what the series API answers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MetricName = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_.:]*$", max_length=128)
]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LabelValue = Annotated[str, StringConstraints(max_length=128)]
MAX_POINTS = 10_000


class MetricPoint(BaseModel):
    """One sample: a gauge's reading, or how many happened (a count) since the last push."""

    model_config = ConfigDict(extra="forbid")

    name: MetricName
    value: float = Field(
        ge=-1e15, le=1e15, description="at most 10^15 either way; a count is never negative"
    )
    time: datetime | None = Field(default=None, description="when; default: on arrival")
    kind: Literal["gauge", "count"] = "gauge"
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=16)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class MetricPush(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[MetricPoint] = Field(min_length=1, max_length=MAX_POINTS)


class PushAnswer(BaseModel):
    accepted: int
    windows: int = Field(description="10-second windows written or added to")


class MetricPointRead(BaseModel):
    start: datetime
    value: float = Field(
        description="a gauge's mean, a count's rate per second; summed over series"
    )


class MetricSeries(BaseModel):
    name: str
    kind: str
    seconds: int
    points: list[MetricPointRead]
    band: tuple[float, float] | None = Field(
        default=None,
        description="the normal range at this time of day: the 10th and 90th percentiles of "
        "the same half hour on the previous seven days; null without enough history",
    )


class MetricSummary(BaseModel):
    name: str
    kind: str
    series: int


class StatsdLineError(BaseModel):
    line: int = Field(description="1-based")
    detail: str


@dataclass(frozen=True)
class QueriedSeries:
    """One series of a Prometheus query's result: its labels and finite samples, oldest first."""

    labels: dict[str, str]
    samples: list[tuple[datetime, float]]


class PrometheusReader(Protocol):
    """What the poller needs of a Prometheus server (adapters/prometheus; a fake in tests).

    Failures raise `fleetops.metrics.exceptions.PrometheusError` subclasses."""

    async def query(self, promql: str) -> list[QueriedSeries]: ...

    async def query_range(
        self, promql: str, *, start: datetime, end: datetime, step: float
    ) -> list[QueriedSeries]: ...

    async def aclose(self) -> None: ...
