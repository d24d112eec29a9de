"""API shapes of hardware signal ingestion."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from fleetops.devices.signals.ingest import Source
from fleetops.findings.schemas import FindingRead

MAX_TEXT = 16 * 1024 * 1024  # characters: a large SEL dump or a full scrape fits many times
ToolOutput = Annotated[
    Annotated[str, StringConstraints(max_length=MAX_TEXT)] | dict[str, Any] | list[Any],
    Field(description="the tool's output: text, or JSON (smart, edac) as a string or a value"),
]


class SignalsBody(BaseModel):
    source: Source = Field(description="which tool produced `payload`")
    payload: ToolOutput
    previous: ToolOutput | None = Field(
        default=None,
        description="the payload of this host's previous ingest of the same source: counters "
        "(edac, node_exporter) report increases since it, SEL events in it are skipped",
    )


class SignalsResult(BaseModel):
    source: Source
    signals: int = Field(description="problems found in the payload (0: nothing wrong)")
    opened: list[int] = Field(description="ids of the findings opened by this payload")
    findings: list[FindingRead] = Field(description="every finding opened or bumped, in order")
