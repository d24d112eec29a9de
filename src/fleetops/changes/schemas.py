"""API shapes of change management. Parameters are only ever shown redacted."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from fleetops.changes.executor import MAX_OUTPUT
from fleetops.inventory.selectors import SelectorText
from fleetops.kit.instants import Instant
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
    digest: str = Field(description="sha256 of the source: what a pin names")
    created_by: str
    created_at: datetime


class WorkflowDetail(WorkflowRead):
    source: str


_WORKFLOW_EXAMPLE = """\
name: restart-nginx
version: 1
description: Restart nginx a rack at a time.
stages:
  - name: restart
    steps:
      - operation: service_restart
        params: {service: nginx}
    strategy: {batch: 10%, max_failures: 1, spread_by: rack}
"""


class WorkflowSubmit(BaseModel):
    source: str = Field(
        max_length=1_000_000,
        description="the workflow YAML (docs/changes.md); 422 names every problem in it",
        examples=[_WORKFLOW_EXAMPLE],
        json_schema_extra={"format": "workflow-yaml"},
    )


class ValidationReport(BaseModel):
    ok: bool
    issues: list[dict[str, Any]]


class ChangeCreate(BaseModel):
    workflow: str = Field(min_length=1, max_length=64)
    version: int | None = Field(default=None, ge=1, le=1_000_000)
    selector: SelectorText
    params: dict[str, Any] = Field(default_factory=dict)
    title: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=10_000)
    window_start: Instant | None = None
    window_end: Instant | None = None


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


class StepPreviewRead(BaseModel):
    """One step as it will run on its stage's sample host (secret values as ***)."""

    model_config = ConfigDict(from_attributes=True)

    stage: str
    hostname: str
    step: int
    operation: str
    risk: str
    runs: str = Field(description="the command text, or `action NAME {params}`")
    stdin: str = Field(description="what is fed on stdin; empty for nothing")
    error: str = Field(description="why it cannot run on this host; empty when it can")
    as_user: str = Field(
        default="",
        description="the user the command runs as through sudo (the host's `become`); "
        "empty: as the login user",
    )


class ChangeDetail(ChangeRead):
    approvals_given: list[ApprovalRead]
    hosts: list[HostRunRead]


class FreezeCreate(BaseModel):
    """No batch starts from `starts_at` until `ends_at` (after it: 422 otherwise)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "peak-season",
                    "starts_at": "2026-11-10T00:00:00Z",
                    "ends_at": "2026-11-12T00:00:00Z",
                    "reason": "the year's biggest sales event",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=128)
    starts_at: Instant
    ends_at: Instant
    reason: str = Field(default="", max_length=2000)


class FreezeRead(FreezeCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_by: str


class AdhocHost(BaseModel):
    model_config = ConfigDict(extra="forbid")  # so `uniqueItems` means one entry per host

    hostname: str = Field(min_length=1, max_length=253)


class AdhocStart(BaseModel):
    """Targets come from the inventory (`selector`) or from a file (`hosts`): exactly one."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["selector"]}, {"required": ["hosts"]}]}
    )

    command: str = Field(min_length=1, max_length=10_000)
    selector: SelectorText | SkipJsonSchema[None] = None
    hosts: Annotated[list[AdhocHost], Field(max_length=100_000)] | SkipJsonSchema[None] = Field(
        default=None,
        description="hosts from an inventory file",
        json_schema_extra={"uniqueItems": True},
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
    # What an executor keeps of a stream (MAX_OUTPUT bytes decode to at most as many characters).
    stdout: str = Field(default="", max_length=MAX_OUTPUT)
    stderr: str = Field(default="", max_length=MAX_OUTPUT)
    error: str = Field(default="", max_length=10_000)


class AdhocResults(BaseModel):
    results: list[AdhocResultIn] = Field(max_length=100_000)
