"""What a link switch is asked with, and what the suspects of a slow link look like."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# As the link_drain operation checks them: a value can never add a word to a command.
SwitchName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)
]
InterfaceName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9/._:,-]*$", max_length=64)
]
Hostname = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class LinkSwitchCreate(BaseModel):
    """Shift traffic away from a switch link: proposed as a change awaiting approval."""

    model_config = ConfigDict(extra="forbid")

    switch: SwitchName = Field(description="a switch of the inventory, e.g. the slow rack's ToR")
    interface: InterfaceName | None = Field(
        default=None,
        description="the interface, port-channel or range that carries the link; default: "
        "the setting link_switch_interface (a ToR's uplinks)",
    )
    action: Literal["drain", "restore"] = Field(
        default="drain", description="drain: shift traffic away; restore: put it back"
    )
    via: Hostname | None = Field(
        default=None,
        description="the management host that runs it; default: the first host labelled "
        "network_cli",
    )
    reason: str = Field(default="", max_length=2000)


class Suspect(BaseModel):
    """A rack's ToR, and how much of its cross-rack traffic was slow lately: the rack whose
    links are slow with most peers is the likelier culprit of a slow rack pair."""

    rack: str
    switch: str | None = Field(description="the rack's ToR; None when the inventory has none")
    slow_peers: int = Field(description="other racks with which its links were slow")
    peers: int = Field(description="other racks it exchanged data with")
    slow_fraction: float = Field(description="of its cross-rack transfers, the slow ones")


class LinkSuspects(BaseModel):
    src_rack: str
    dst_rack: str
    minutes: int
    suspects: list[Suspect] = Field(description="the likelier culprit first")
    via: list[str] = Field(description="management hosts (labelled network_cli) that can act")
