"""API shapes of change management. Parameters are only ever shown redacted."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleetops.kit.pagination import Page


class OperationRead(BaseModel):
    name: str
    version: int
    description: str
    risk: str
    kind: str  # action | check (only checks may be in a verify stage)
    idempotent: bool
    timeout: float
    params: dict[str, Any]
    has_check: bool
    has_verify: bool
    has_rollback: bool


class WorkflowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    version: int
    description: str
    created_by: str
    created_at: datetime


class WorkflowDetail(WorkflowRead):
    source: str


class WorkflowSubmit(BaseModel):
    source: str = Field(max_length=1_000_000, description="the workflow YAML")


class ValidationReport(BaseModel):
    ok: bool
    issues: list[dict[str, Any]]


class ChangeCreate(BaseModel):
    workflow: str = Field(min_length=1, max_length=64)
    version: int | None = Field(default=None, ge=1, le=1_000_000)
    selector: str = Field(min_length=1, max_length=4096)
    params: dict[str, Any] = Field(default_factory=dict)
    title: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=10_000)
    window_start: datetime | None = None
    window_end: datetime | None = None


class ChangeRead(BaseModel):
    id: int
    title: str
    reason: str
    workflow: str | None  # None for an ad-hoc command
    workflow_version: int | None
    selector: str
    params: dict[str, Any]  # redacted
    host_count: int
    risk: str
    approvals_required: int
    approvals: int
    state: str
    status: str
    requester: str
    kind: str
    emergency: bool
    window_start: datetime | None
    window_end: datetime | None
    stage_index: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    hosts_by_state: dict[str, int]


ChangePage = Page[ChangeRead]


class Vote(BaseModel):
    comment: str = Field(default="", max_length=2000)
    emergency: bool = Field(default=False, description="admins only, with a reason in comment")


class ControlBody(BaseModel):
    reason: str = Field(default="", max_length=2000)


class ApprovalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    approver: str
    decision: str
    emergency: bool
    comment: str
    at: datetime


class HostRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    hostname: str
    stage_index: int
    batch_index: int
    state: str
    step_index: int
    error: str
    started_at: datetime | None
    finished_at: datetime | None


class StepRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    hostname: str = ""
    step_index: int
    operation: str
    phase: str
    attempt: int
    state: str
    exit_code: int | None
    stdout: str
    stderr: str
    error: str
    started_at: datetime
    finished_at: datetime | None


class ChangeDetail(ChangeRead):
    approvals_given: list[ApprovalRead]
    hosts: list[HostRunRead]


class FreezeCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(default="", max_length=2000)


class FreezeRead(FreezeCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_by: str


class AdhocHost(BaseModel):
    hostname: str = Field(min_length=1, max_length=253)


class AdhocStart(BaseModel):
    command: str = Field(min_length=1, max_length=10_000)
    selector: str | None = Field(default=None, max_length=4096)
    hosts: list[AdhocHost] | None = Field(
        default=None, max_length=100_000, description="hosts from an inventory file"
    )
    source: str = Field(default="", max_length=4096, description="where the hosts came from")
    risk: Literal["read_only", "low", "medium", "high"] = "read_only"


class AdhocTargetRead(BaseModel):
    hostname: str
    address: str
    port: int
    user: str
    labels: dict[str, str]


class AdhocStarted(BaseModel):
    change_id: int
    targets: list[AdhocTargetRead]


class AdhocResultIn(BaseModel):
    hostname: str = Field(min_length=1, max_length=253)
    exit_code: int | None = Field(default=None, ge=-1024, le=1024)
    stdout: str = Field(default="", max_length=1_000_000)
    stderr: str = Field(default="", max_length=1_000_000)
    error: str = Field(default="", max_length=10_000)


class AdhocResults(BaseModel):
    results: list[AdhocResultIn] = Field(max_length=100_000)
