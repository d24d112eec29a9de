"""Resource reports over the API: what `fleetops resources recommend` computes and sends (the
figures, never the trace), and the kept report with each recommendation's decision."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

Resource = Literal["cpu", "mem"]
UNITS: dict[str, str] = {"cpu": "cores", "mem": "normalised"}
BUCKETS = 48  # the most points a group's series holds
WASTERS = 10  # the most wasteful groups a report keeps, per resource
Figure = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Points = Annotated[list[Figure], Field(max_length=BUCKETS)]
Name = Annotated[str, Field(min_length=1, max_length=255)]


class Advice(BaseModel):
    """One group's recommended request of one resource (CPU in cores, memory normalised)."""

    group: Name
    resource: Resource
    request: Figure
    recommendation: Figure
    saving: float = Field(allow_inf_nan=False)  # (request - recommendation) x duration
    risk: float | None = Field(default=None, ge=0, le=1)  # expected share of instances above


class Series(BaseModel):
    """A group over time: per bucket, its average concurrent instances, requests and usage."""

    instances: Points
    cpu_requested: Points
    cpu_used: Points
    mem_requested: Points
    mem_used: Points


class Total(BaseModel):
    """Resource x seconds over the trace: what was requested, used, and would be requested;
    wasted counts each instance's unused request alone (never netted against another's
    over-use)."""

    requested: Figure
    used: Figure
    recommended: Figure
    wasted: Figure = 0.0


class Waster(BaseModel):
    """A group among those leaving most of one resource's request unused (resource x seconds)."""

    group: Name
    resource: Resource
    requested: Figure
    wasted: Figure


class Figures(BaseModel):
    totals: dict[Resource, Total]
    start_s: float = Field(allow_inf_nan=False)
    bucket_s: Figure
    series: dict[Name, Series] = Field(max_length=20_000)
    wasters: list[Waster] = Field(default_factory=list, max_length=2 * WASTERS)


class ReportIn(BaseModel):
    """A right-sizing analysis of one trace, as its recommender produced it."""

    source: Name
    key: Literal["task", "profile", "job"]
    method: Literal["vpa", "krr", "fleetops"]
    figures: Figures
    recommendations: list[Advice] = Field(max_length=40_000)


class RecommendationRead(BaseModel):
    id: int
    report_id: int
    group: str
    target: str
    resource: str
    request: float
    recommendation: float
    unit: str
    saving: float
    risk: float | None
    status: str
    decided_by: str | None
    decided_at: datetime | None
    change_id: int | None


class ReportSummary(BaseModel):
    id: int
    created_at: datetime
    created_by: str
    source: str
    key: str
    method: str
    totals: dict[str, Total]
    counts: dict[str, int]  # recommendations by status


class ReportPage(BaseModel):
    items: list[ReportSummary]
    total: int
    limit: int
    offset: int


class ReportRead(ReportSummary):
    recommendations: list[RecommendationRead]


class Decision(BaseModel):
    """Accept or reject a recommendation (a reason is kept in the audit record)."""

    reason: str = Field("", max_length=2000)


class QuotaRead(BaseModel):
    target: str
    cpu: str
    memory: str


class QuotasView(BaseModel):
    """The scheduler's current quotas, as its newest `scheduler_quotas` output printed them."""

    kind: str
    host: str | None
    change_id: int | None
    collected_at: datetime | None
    quotas: list[QuotaRead]
