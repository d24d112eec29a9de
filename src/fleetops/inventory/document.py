"""The neutral inventory document every import format parses into and every export renders from.

A document is a plain description of (part of) a fleet; `service.apply_document` writes it in one
transaction after checking every reference, so a bad file changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fleetops.devices.enums import Lifecycle

# Wider than DNS: inventories name hosts by alias too (Ansible's `web_01`).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$"
# Regions, datacenters, clusters, racks and switches: the same alphabet, 64 characters as stored.
ENTITY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# Vendors name models with spaces and punctuation ("PowerEdge R740xd", "SYS-420GP-TNR (4U)").
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/ +()-]{0,63}$"
SSH_USER_PATTERN = r"^[a-z_][a-z0-9_.-]{0,63}$"
# A DNS name: letters, digits and hyphens in labels of 1-63, the last one starting with a letter
# (so `10.0.0.300` is a broken IP address, not a name).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS_NAME_PATTERN = rf"^(?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.?$"
# What `validate_address` accepts, as the schema says it: nothing, an IP address or a DNS name.
ADDRESSES: list[dict[str, Any]] = [
    {"type": "string", "maxLength": 0},
    {"type": "string", "format": "ipv4"},
    {"type": "string", "format": "ipv6"},
    {"type": "string", "pattern": DNS_NAME_PATTERN, "maxLength": 253},
]
ADDRESS_SCHEMA: dict[str, Any] = {"anyOf": ADDRESSES}
# Lengths as stored. (Imports name labels after their columns, so a key may be any text; only
# keys of letters, digits and ._/- can be named in a selector.)
LabelKey = Annotated[str, Field(min_length=1, max_length=128)]
LabelValue = Annotated[str, Field(max_length=256)]
GroupName = Annotated[str, Field(min_length=1, max_length=128)]
L = Lifecycle
# The lifecycle's states in the order pages and messages list them (not the enum's order).
HOST_STATES = tuple(
    s.value
    for s in (
        L.IN_SERVICE,
        L.PROVISIONING,
        L.SUSPECT,
        L.DRAINING,
        L.ISOLATED,
        L.IN_REPAIR,
        L.VERIFYING,
        L.RETIRED,
    )
)


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # 1-based line in the source file, for error messages; not stored.
    line: int | None = Field(default=None, exclude=True)


class RegionDoc(_Item):
    name: str = Field(pattern=ENTITY_NAME_PATTERN)
    description: str = ""


class DatacenterDoc(_Item):
    name: str = Field(pattern=ENTITY_NAME_PATTERN)
    region: str


class LatencyDoc(_Item):
    a: str
    b: str
    rtt_ms: float = Field(ge=0)


class ClusterDoc(_Item):
    name: str = Field(pattern=ENTITY_NAME_PATTERN)
    scheduler: str = Field(default="none", pattern=r"^(none|yarn|kubernetes|slurm)$")
    description: str = ""


class RackDoc(_Item):
    name: str = Field(pattern=ENTITY_NAME_PATTERN)
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
    name: str = Field(pattern=ENTITY_NAME_PATTERN)
    role: str = Field(pattern=r"^(tor|spine)$")
    datacenter: str
    rack: str | None = None
    address: str = ""


class HostFields(BaseModel):
    """A host as people write it; the API's `HostCreate` and the import's `HostDoc`."""

    model_config = ConfigDict(extra="forbid")

    hostname: str = Field(pattern=NAME_PATTERN)
    address: str = Field(default="", json_schema_extra=ADDRESS_SCHEMA)
    ssh_port: int = Field(default=22, ge=1, le=65535)
    ssh_user: str = Field(default="root", pattern=SSH_USER_PATTERN)
    model: str | None = None
    rack: str | None = None
    cluster: str | None = None
    # An enum in the schema; checked by the validator below for a message that lists the states.
    state: str = Field(default=L.IN_SERVICE.value, json_schema_extra={"enum": list(HOST_STATES)})
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    groups: list[GroupName] = Field(default_factory=list)

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
    # Passwords an inventory file carries (`ansible_become_password`): for `fleetops exec` on the
    # machine that read the file, never stored, never sent, never shown (excluded from dumps).
    secrets: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)


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
    if len(value) > 253 or not re.fullmatch(DNS_NAME_PATTERN, value):
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
