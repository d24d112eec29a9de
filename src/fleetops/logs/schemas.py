"""Logs API shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fleetops.inventory.selectors import SelectorText
from fleetops.kit.nul import WORD_PATTERN


class IngestAnswer(BaseModel):
    accepted: int = Field(description="lines stored by this request")
    duplicates: int = Field(0, description="lines already stored earlier (agent resends)")
    truncated: int = Field(0, description="lines cut at the configured maximum line size")
    clock_skew: int = Field(0, description="lines whose time was too far off; stored at arrival")
    refused_hosts: int = Field(
        0, description="lines naming a host the token may not speak for; not stored"
    )


class IngestTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, pattern=WORD_PATTERN)
    hosts: SelectorText | None = Field(
        default=None, description="the hosts whose lines it may send (a selector); unset: any host"
    )


class IngestTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    hosts: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None


class IngestTokenCreated(IngestTokenRead):
    token: str = Field(description="shown once; store it in the shipper's configuration")


class LineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ts: datetime
    received_at: datetime
    host: str
    source: str
    file: str | None
    offset: int | None
    template_id: int | None
    message: str
    labels: dict[str, str]
    flags: int


class TemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    text: str
    count: int
    first_seen: datetime
    last_seen: datetime
    example: str
    alias_of: int | None = None  # the template this one was merged into; its lines are there


class TemplatePage(BaseModel):
    items: list[TemplateRead]
    total: int
    limit: int
    offset: int


class IngestStats(BaseModel):
    running: bool
    pending_lines: int
    accepted: int
    duplicates: int
    rejected_overload: int
    commits: int
    failures: int
    by_source: dict[str, int]
