"""API shapes of devices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fleetops.devices.states import Lifecycle
from fleetops.kit.pagination import MAX_OFFSET, Page

FindingId = Annotated[int, Field(ge=1, le=MAX_OFFSET)]


class DeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    hostname: str
    state: Lifecycle
    since: datetime = Field(description="when the device entered this state")
    reason: str
    updated_by: str = Field(description="who moved it last; empty if never moved")


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
