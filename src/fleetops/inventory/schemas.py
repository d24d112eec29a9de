"""API shapes of the inventory."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from fleetops.inventory.document import (
    ADDRESSES,
    ENTITY_NAME_PATTERN,
    SSH_USER_PATTERN,
    GroupName,
    HostFields,
    LabelKey,
    LabelValue,
    validate_address,
)
from fleetops.kit.pagination import Page


class HostRead(BaseModel):
    id: int
    hostname: str
    address: str
    ssh_port: int
    ssh_user: str
    model: str | None
    rack: str | None
    cluster: str | None
    datacenter: str | None
    state: str
    labels: dict[str, str]
    groups: list[str]
    created_at: datetime
    updated_at: datetime


HostPage = Page[HostRead]


HostCreate = HostFields


class HostUpdate(BaseModel):
    """Every field optional; only the fields sent are changed. State changes come later via
    the device lifecycle, so `state` is not editable here."""

    address: str | None = Field(
        default=None, json_schema_extra={"anyOf": [{"type": "null"}, *ADDRESSES]}
    )
    ssh_port: int | None = Field(default=None, ge=1, le=65535)
    ssh_user: str | None = Field(default=None, pattern=SSH_USER_PATTERN)
    model: str | None = None
    rack: str | None = None
    cluster: str | None = None
    labels: dict[LabelKey, LabelValue] | None = None
    groups: list[GroupName] | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else validate_address(value)


class RackRead(BaseModel):
    id: int
    name: str
    datacenter: str
    region: str
    cluster: str | None
    failure_domains: dict[str, str]
    host_count: int
    hosts_by_state: dict[str, int]


class RackCreate(BaseModel):
    name: str = Field(pattern=ENTITY_NAME_PATTERN)
    datacenter: str = Field(pattern=ENTITY_NAME_PATTERN)
    cluster: str | None = None
    failure_domains: dict[str, str] = Field(default_factory=dict)


class RackUpdate(BaseModel):
    cluster: str | None = None
    failure_domains: dict[str, str] | None = None


class NamedRead(BaseModel):
    """Regions, datacenters, clusters, switches and hardware models share this loose shape."""

    id: int
    name: str
    attributes: dict[str, Any]


class LinkRead(BaseModel):
    id: int
    a: str
    a_kind: str
    b: str
    speed_gbps: float


class ImportRequest(BaseModel):
    content: str = Field(max_length=50_000_000, description="the file's text")
    format: Literal["yaml", "csv", "ansible-ini", "ansible-yaml", "netbox-csv"] | None = Field(
        default=None, description="detected from filename/content if unset"
    )
    filename: str = ""
    dry_run: bool = False


class ImportSummary(BaseModel):
    format: str
    dry_run: bool
    created: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]
