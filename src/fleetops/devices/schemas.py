"""API shapes of devices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fleetops.devices.enums import Lifecycle, TicketStatus
from fleetops.kit.pagination import MAX_OFFSET, Page

FindingId = Annotated[int, Field(ge=1, le=MAX_OFFSET)]


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    hostname: str
    state: Lifecycle
    since: datetime = Field(description="when the device entered this state")
    reason: str
    updated_by: str = Field(description="who moved it last; empty if never moved")
    change_id: int | None = Field(
        default=None, description="the change moving it now (isolation or verification)"
    )
    probation_until: datetime | None = Field(
        default=None, description="back from repair: failing before this escalates the repair"
    )


class DevicePage(Page[DeviceRead]):
    counts: dict[str, int] = Field(
        description="devices per state among the selected hosts (ignores the `state` filter)"
    )


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    from_state: Lifecycle
    to_state: Lifecycle
    actor: str = Field(description="a username, or `policy:<name>`")
    reason: str
    evidence: list[int] = Field(description="ids of the findings behind the move")
    override: bool
    at: datetime


TransitionPage = Page[TransitionRead]


class DeviceDetail(DeviceRead):
    next_states: list[Lifecycle] = Field(description="where a regular transition may go from here")
    recent: list[TransitionRead] = Field(description="the latest transitions, newest first")


class AdmitBody(BaseModel):
    reason: str = Field(
        min_length=1, max_length=2000, description="why this machine is ready, e.g. its rack job"
    )


class AdmitRead(BaseModel):
    hostname: str
    state: str
    change_id: int = Field(description="the verification change it must pass to serve")


class TransitionBody(BaseModel):
    to: Lifecycle
    reason: str = Field(
        max_length=2000, description="why; required (a blank reason is refused by ReasonRequired)"
    )
    evidence: list[FindingId] = Field(
        default_factory=list, max_length=100, description="ids of findings that justify the move"
    )
    override: bool = Field(
        default=False, description="jump outside the graph (operators); never out of retired"
    )


class TicketRead(BaseModel):
    """A repair ticket as the API, the CLI and the webhook show it."""

    id: int
    host: str
    status: TicketStatus
    action: str = Field(description="the rung of the repair ladder: reboot, reimage or replace")
    symptoms: str
    evidence: list[int] = Field(description="ids of the findings behind the isolation")
    vendor: str
    rma_number: str
    part: str
    external_ref: str = Field(description="the ticket's id in an external system, e.g. Jira")
    notes: str
    escalated: bool = Field(description="the device failed again on probation after a repair")
    opened_at: datetime
    sla_due: datetime
    overdue: bool = Field(description="still open past its SLA")
    updated_at: datetime
    closed_at: datetime | None


class TicketPage(Page[TicketRead]):
    counts: dict[str, int] = Field(description="tickets per status (all tickets)")


Short = Annotated[str, Field(max_length=255)]


class TicketUpdateBody(BaseModel):
    """An update from whoever repairs: a status, a note, RMA fields (any of them)."""

    model_config = ConfigDict(extra="forbid")

    status: TicketStatus | None = Field(
        default=None,
        description="diagnosing, waiting_parts, repaired (starts verification) or failed "
        "(this rung did not help: the next one is opened)",
    )
    note: str = Field(default="", max_length=4000)
    vendor: Short | None = None
    rma_number: Short | None = None
    part: Short | None = None
    external_ref: Short | None = None
