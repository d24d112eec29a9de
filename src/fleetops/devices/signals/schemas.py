"""API shapes of hardware signal ingestion."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fleetops.devices.enums import Source
from fleetops.findings.schemas import FindingRead

MAX_TEXT = 16 * 1024 * 1024  # characters: a large SEL dump or a full scrape fits many times
ToolOutput = Annotated[
    Annotated[str, StringConstraints(max_length=MAX_TEXT)] | dict[str, Any] | list[Any],
    Field(description="the tool's output: text, or JSON (smart, edac) as a string or a value"),
]


_PREVIOUS = (
    "the payload of this host's previous ingest of the same source: counters (edac, "
    "node_exporter) report increases since it, SEL events in it are skipped"
)
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
_SEL = (
    "   1 | 04/01/26 | 10:00:01 UTC | Memory #0x53 | Correctable ECC logging limit reached "
    "| Asserted\n"
)


class TextSignals(BaseModel):
    """A tool that prints text: `ipmitool sel elist`, a node_exporter /metrics page."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"source": "ipmi_sel", "payload": _SEL}]}
    )

    source: Literal["ipmi_sel", "node_exporter"] = Field(description="which tool produced it")
    payload: Text
    previous: Text | None = Field(default=None, description=_PREVIOUS)


class JsonSignals(BaseModel):
    """A tool that writes JSON (`smartctl -j -a`, the EDAC counters, `fleetops predict disks -o
    json`, `fleetops forecast usage -o json` with a `mount`), sent as a value or text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "smart",
                    "payload": {
                        "device": {"name": "/dev/sda", "protocol": "ATA"},
                        "smart_status": {"passed": True},
                    },
                }
            ]
        }
    )

    source: Literal["smart", "edac", "disk_prediction", "fill_forecast"] = Field(
        description="which tool produced it"
    )
    payload: ToolOutput
    previous: ToolOutput | None = Field(default=None, description=_PREVIOUS)


# Text tools take text, JSON tools JSON: the schema says which by `source`.
SignalsBody = Annotated[TextSignals | JsonSignals, Field(discriminator="source")]


class SignalsResult(BaseModel):
    source: Source
    signals: int = Field(description="problems found in the payload (0: nothing wrong)")
    opened: list[int] = Field(description="ids of the findings opened by this payload")
    findings: list[FindingRead] = Field(description="every finding opened or bumped, in order")
