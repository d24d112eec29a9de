"""API shapes of inspection: probe results with their verdicts, baselines, and starting a run."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleetops.inspection.enums import Probe
from fleetops.inspection.service import DEFAULT_DIRECTORY, DEFAULT_PROBES, PROBES, probe_names
from fleetops.inventory import selectors
from fleetops.kit.pagination import Page

# The values of `BASELINED` and `Outcome`: literals of values, not of members, because a 422
# quotes them (members would read `<Probe.CPU: 'cpu'>`).
ProbeName = Literal["cpu", "memory", "disk", "network"]  # smart has no baseline
Status = Literal["pass", "fail", "inconclusive", "error"]


class BandRead(BaseModel):
    median: float
    mad: float
    low: float
    high: float
    unit: str


class BaselineRead(BaseModel):
    """One version of the healthy band of every curve point of a probe on a hardware model."""

    id: int
    model: str
    probe: str
    version: int
    active: bool = Field(description="the version new results are judged on")
    samples: int = Field(description="healthy hosts it was built from")
    bands: dict[str, BandRead]
    source_runs: list[int] = Field(description="ids of the results it was built from")
    built_by: str
    reason: str
    built_at: datetime


class InspectionRead(BaseModel):
    """One probe run on one host: its curve, the load it ran under, and the verdict."""

    id: int
    host: str
    host_id: int | None
    model: str
    probe: str
    status: Status
    reasons: list[str]
    points: dict[str, float]
    units: dict[str, str]
    ratios: dict[str, float] = Field(description="each point divided by the model's median")
    lowest_point: str | None
    lowest_ratio: float | None
    load: dict[str, Any]
    tool_version: str
    baseline_id: int | None
    host_state: str = Field(description="the host's lifecycle state when measured")
    change_id: int | None
    duration_s: float
    at: datetime


class InspectionDetail(InspectionRead):
    baseline: BaselineRead | None = None


InspectionPage = Page[InspectionRead]


class InspectionStart(BaseModel):
    """Inspect the hosts a selector matches: a standard change of workflow inspect-hardware."""

    # The cross-field rules below, stated in the schema too (JSON Schema if/then), so a client
    # generated from the document sends what is accepted.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"probes": {"contains": {"const": probe}}}},
                    "then": {"required": [field], "properties": {field: {"minLength": 1}}},
                }
                for probe, field in (
                    (Probe.SMART.value, "device"),
                    (Probe.NETWORK.value, "iperf_server"),
                )
            ]
        },
    )

    selector: selectors.SelectorText
    # An enum in the schema; the validator below refuses others with the list of known ones.
    probes: list[str] = Field(
        default_factory=lambda: [p.value for p in DEFAULT_PROBES],
        min_length=1,
        max_length=len(PROBES),
        json_schema_extra={"items": {"type": "string", "enum": [p.value for p in PROBES]}},
    )
    device: str = Field(
        default="",
        pattern=r"^(/dev/[A-Za-z0-9._/-]+)?$",
        max_length=256,
        description="the drive the smart probe reads, e.g. /dev/nvme0",
    )
    iperf_server: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9._-]+(:[0-9]{1,5})?)?$",
        max_length=260,
        description="the iperf3 server (host or host:port) the network probe measures against",
    )
    quick: bool = Field(default=False, description="about a second per figure (labs, tests)")
    directory: str = Field(
        default=DEFAULT_DIRECTORY,
        pattern=r"^/[A-Za-z0-9._/-]*$",
        max_length=1024,
        description="where the disk probe writes its scratch file",
    )
    record_only: bool = Field(
        default=False, description="store and judge, but succeed whatever the verdict"
    )
    reason: str = Field(default="", max_length=10_000)

    @field_validator("selector")
    @classmethod
    def _selector_parses(cls, value: str) -> str:
        try:
            selectors.parse(value)
        except selectors.SelectorError as exc:
            raise ValueError(exc.detail) from None
        return value

    @field_validator("probes")
    @classmethod
    def _probes_known(cls, value: list[str]) -> list[str]:
        return probe_names(value)

    @model_validator(mode="after")
    def _probes_have_their_targets(self) -> InspectionStart:
        if Probe.SMART in self.probes and not self.device:
            raise ValueError("the smart probe reads one drive: give its device, e.g. /dev/sda")
        if Probe.NETWORK in self.probes and not self.iperf_server:
            raise ValueError(
                "the network probe measures against an iperf3 server: give iperf_server, "
                "e.g. perf-01 or perf-01:5201"
            )
        return self


class InspectionStarted(BaseModel):
    change_id: int
    state: str
    host_count: int
    title: str


class BaselineBuild(BaseModel):
    """Build a new baseline version from the model's latest healthy results."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=64)
    probe: ProbeName
    reason: str = Field(default="", max_length=2000)
    busy_load: float | None = Field(
        default=None, gt=0, description="accept results up to this 1-minute load per CPU"
    )
    busy_cpu: float | None = Field(
        default=None, gt=0, le=1, description="accept results up to this busy CPU share before"
    )
    busy_steal: float | None = Field(
        default=None, gt=0, le=1, description="accept results up to this steal share during"
    )
