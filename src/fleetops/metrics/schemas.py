"""What a pusher sends and what the series API answers."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

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
