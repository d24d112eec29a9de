"""Remediation rules and their actions as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fleetops.devices.enums import Outcome, Remedy, RemedyStatus, RuleMode
from fleetops.kit.pagination import Page


class RuleRead(BaseModel):
    name: str
    description: str
    kind: str
    signature: str | None
    min_severity: str | None
    action: Remedy
    repair: str | None = Field(description="drain: the rung the repair ticket starts at")
    service: str | None = Field(description="restart_service: the systemd unit")
    mode: RuleMode
    per_hour: int = Field(description="at most this many actions an hour")
    hosts_out: int = Field(description="at most this many hosts worked on at once")
    verify_minutes: int = Field(description="how long a remedied finding must stay quiet")
    counts: dict[str, int] = Field(
        description="actions by `mode:status` (e.g. `dry_run:proposed`) and by outcome"
    )


class ProposalRead(BaseModel):
    rule: str
    mode: RuleMode
    finding_id: int
    host: str
    action: Remedy
    plan: dict[str, Any] = Field(description="the change it would submit")
    reason: str
    held: str = Field(description="the limit that holds it; empty: it would act now")


class ModeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: RuleMode


class ActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule: str
    mode: RuleMode
    at: datetime
    finding_id: int | None
    entity: str = Field(description="the host")
    action: Remedy
    status: RemedyStatus
    reason: str
    plan: dict[str, Any]
    change_id: int | None
    outcome: Outcome | None
    outcome_at: datetime | None


ActionPage = Page[ActionRead]
