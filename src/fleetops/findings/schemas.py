"""API shapes of findings, and the observation every reporter hands the service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fleetops.kit.nul import TEXT_PATTERN
from fleetops.kit.pagination import Page


@dataclass(frozen=True)
class Observation:
    """What a detector (or a person's tool) saw: a finding is opened with it, or the live one
    of the same `dedup_key` (default: one per kind and entity) is bumped. `onset_at` is the
    event time of the first evidence (default: the report's `now`)."""

    kind: str
    detector: str
    entity_type: str
    entity: str
    severity: str
    score: float
    title: str
    evidence: Sequence[Mapping[str, Any]] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    onset_at: datetime | None = None
    dedup_key: str | None = None


class FindingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    detector: str
    entity_type: str
    entity: str
    severity: str
    score: float
    title: str
    status: str
    dedup_key: str
    evidence: list[dict[str, Any]] = Field(description="refs to open the evidence, newest last")
    details: dict[str, Any]
    occurrences: int
    onset_at: datetime = Field(description="event time of the first evidence")
    first_seen: datetime
    last_seen: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: str


FindingPage = Page[FindingRead]


class AckBody(BaseModel):
    reason: str = Field(default="", max_length=2000, description="optional; kept in the audit log")


class ResolveBody(BaseModel):
    reason: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=2000, pattern=TEXT_PATTERN
        ),
    ] = Field(description="what was done, or why it is not a problem; required")


class FindingCounts(BaseModel):
    by_status: dict[str, int]
    live_by_severity: dict[str, int] = Field(description="open and acknowledged findings only")
    live: int
