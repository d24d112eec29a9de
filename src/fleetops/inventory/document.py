"""The neutral inventory document every import format parses into and every export renders from.

A document is a plain description of (part of) a fleet; `service.apply_document` writes it in one
transaction after checking every reference, so a bad file changes nothing.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Wider than DNS: inventories name hosts by alias too (Ansible's `web_01`).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$"
# Vendors name models with spaces and punctuation ("PowerEdge R740xd", "SYS-420GP-TNR (4U)").
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/ +()-]{0,63}$"
SSH_USER_PATTERN = r"^[a-z_][a-z0-9_.-]{0,63}$"
HOST_STATES = (
    "in_service",
    "provisioning",
    "suspect",
    "draining",
    "isolated",
    "in_repair",
    "verifying",
    "retired",
)


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # 1-based line in the source file, for error messages; not stored.
    line: int | None = Field(default=None, exclude=True)


class RegionDoc(_Item):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""


class DatacenterDoc(_Item):
    name: str = Field(pattern=NAME_PATTERN)
    region: str


class LatencyDoc(_Item):
    a: str
    b: str
    rtt_ms: float = Field(ge=0)


class ClusterDoc(_Item):
    name: str = Field(pattern=NAME_PATTERN)
    scheduler: str = Field(default="none", pattern=r"^(none|yarn|kubernetes|slurm)$")
    description: str = ""


class RackDoc(_Item):
    name: str = Field(pattern=NAME_PATTERN)
    datacenter: str
    cluster: str | None = None
    failure_domains: dict[str, str] = Field(default_factory=dict)


class HardwareModelDoc(_Item):
    name: str = Field(pattern=MODEL_PATTERN)
    vendor: str = ""
    cpu_model: str = ""
    cpu_cores: int = Field(default=0, ge=0)
    memory_gb: int = Field(default=0, ge=0)
    disks: list[dict[str, Any]] = Field(default_factory=list)
    nics: list[dict[str, Any]] = Field(default_factory=list)


class SwitchDoc(_Item):
    name: str = Field(pattern=NAME_PATTERN)
    role: str = Field(pattern=r"^(tor|spine)$")
    datacenter: str
    rack: str | None = None
    address: str = ""


class HostFields(BaseModel):
    """A host as people write it; the API's `HostCreate` and the import's `HostDoc`."""

    model_config = ConfigDict(extra="forbid")

    hostname: str = Field(pattern=NAME_PATTERN)
    address: str = ""
    ssh_port: int = Field(default=22, ge=1, le=65535)
    ssh_user: str = Field(default="root", pattern=SSH_USER_PATTERN)
    model: str | None = None
    rack: str | None = None
    cluster: str | None = None
    state: str = "in_service"
    labels: dict[str, str] = Field(default_factory=dict)
    groups: list[str] = Field(default_factory=list)

    @field_validator("address")
    @classmethod
    def _address_is_ip_or_name(cls, value: str) -> str:
        return validate_address(value)

    @field_validator("state")
    @classmethod
    def _state_known(cls, value: str) -> str:
        if value not in HOST_STATES:
            raise ValueError(f"unknown state {value!r}; expected one of {', '.join(HOST_STATES)}")
        return value


class HostDoc(_Item, HostFields):
    pass


class LinkDoc(_Item):
    """`a` is a hostname (host↔ToR) or a ToR switch (ToR↔spine); `b` is a switch."""

    a: str
    b: str
    speed_gbps: float = Field(default=25.0, gt=0)


class InventoryDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regions: list[RegionDoc] = Field(default_factory=list)
    datacenters: list[DatacenterDoc] = Field(default_factory=list)
    latencies: list[LatencyDoc] = Field(default_factory=list)
    clusters: list[ClusterDoc] = Field(default_factory=list)
    racks: list[RackDoc] = Field(default_factory=list)
    hardware_models: list[HardwareModelDoc] = Field(default_factory=list)
    switches: list[SwitchDoc] = Field(default_factory=list)
    hosts: list[HostDoc] = Field(default_factory=list)
    links: list[LinkDoc] = Field(default_factory=list)


def validate_address(value: str) -> str:
    """Accept an IPv4/IPv6 address or a DNS name; reject things that look like broken IPs."""
    value = value.strip()
    if not value:
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if all(part.isdigit() for part in value.split(".")):
        raise ValueError(f"invalid IP address {value!r}")
    if ":" in value:
        raise ValueError(f"invalid IPv6 address {value!r}")
    labels = value.rstrip(".").split(".")
    if not all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels):
        raise ValueError(f"invalid address {value!r}: neither an IP address nor a DNS name")
    return value


class ImportIssue(BaseModel):
    line: int | None
    message: str


class ImportFailed(Exception):
    """Raised with every problem found; nothing has been written."""

    def __init__(self, issues: list[ImportIssue]) -> None:
        self.issues = issues
        lines = "; ".join(
            f"line {i.line}: {i.message}" if i.line else i.message for i in issues[:20]
        )
        more = f" (+{len(issues) - 20} more)" if len(issues) > 20 else ""
        super().__init__(f"{len(issues)} problem(s): {lines}{more}")
