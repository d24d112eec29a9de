"""Inode provisioning across the fleet, from the filesystem facts its hosts printed.

The facts are collected by a change (the `collect-filesystem-facts` workflow, read-only), so
what ran on which host is audited and its output kept with the step; this module reads the
newest successful output of each host, parses it (`facts.parse_collected`) and sums the inode
analysis per hardware model and per host. A host whose output cannot be read is named with the
reason, never counted as zero. Parsed facts are kept by step id: a page view of ten thousand
hosts parses only the outputs that are new since the last one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from fractions import Fraction
from threading import Lock

from pydantic import BaseModel

from fleetops.analytics.storage.exceptions import InputError, NothingToPropose
from fleetops.analytics.storage.facts import HostFacts, parse_collected
from fleetops.analytics.storage.inodes import (
    Policy,
    Report,
    Totals,
    analyze_fleet,
    by_host,
    by_model,
    totals,
)

OPERATION = "filesystem_facts"
WORKFLOW = "collect-filesystem-facts"
RESERVE_WORKFLOW = "release-reserved-blocks"


class InodeFinding(BaseModel):
    kind: str  # inode_tables | reserved_blocks
    saving_bytes: int
    command: str
    reformat: bool
    detail: str


class InodeFilesystem(BaseModel):
    host: str
    model: str
    device: str
    mount: str
    fstype: str
    inodes_total: int
    inodes_used: int
    inode_table_bytes: int
    reserved_bytes: int
    short: bool  # fewer inodes than twice those used: will run out
    saving_bytes: int
    findings: list[InodeFinding]


class InodeTotals(BaseModel):
    key: str  # a hardware model, a host, or "fleet"
    filesystems: int
    inodes_total: int
    inodes_used: int
    inode_table_bytes: int
    reserved_bytes: int
    inode_saving_bytes: int
    reserved_saving_bytes: int
    saving_bytes: int
    short: int
    reformats: int


class InodeView(BaseModel):
    """The fleet's inode provisioning as its newest collected facts show it."""

    hosts: int
    collected_from: datetime | None
    collected_to: datetime | None
    fleet: InodeTotals
    by_model: list[InodeTotals]
    by_host: list[InodeTotals]  # the `limit` hosts that would save most
    filesystems: list[InodeFilesystem]  # the `limit` filesystems that would save most
    problems: dict[str, list[str]]  # host -> a device its facts could not read
    unreadable: dict[str, str]  # host -> why its output is not the operation's


@dataclass(frozen=True, slots=True)
class Collected:
    """One host's newest facts, parsed (or why they could not be)."""

    host: str
    finished_at: datetime | None
    facts: HostFacts | None
    error: str = ""


class FactsCache:
    """Parsed facts by step id: the outputs of the newest steps, parsed once each."""

    def __init__(self) -> None:
        self._by_step: dict[int, Collected] = {}
        self._lock = Lock()

    def known(self) -> list[int]:
        with self._lock:
            return list(self._by_step)

    def update(self, ids: list[int], parsed: Mapping[int, Collected]) -> list[Collected]:
        """Keep the parsed facts of `ids` only (older steps drop out); return them."""
        with self._lock:
            merged = {i: parsed.get(i) or self._by_step[i] for i in ids}
            self._by_step = merged
            return list(merged.values())


def parse(host: str, finished_at: datetime | None, stdout: str) -> Collected:
    """One host's output, or the reason it is not the operation's."""
    try:
        return Collected(host, finished_at, parse_collected(stdout))
    except InputError as exc:
        return Collected(host, finished_at, None, str(exc))


def build_view(collected: list[Collected], models: Mapping[str, str], *, limit: int) -> InodeView:
    """The analysis over every readable host's facts, summed per model and per host."""
    readable = {c.host: c.facts for c in collected if c.facts is not None}
    fleet = analyze_fleet(readable)
    times = [c.finished_at for c in collected if c.finished_at is not None]
    hosts = sorted(by_host(fleet.reports).items(), key=lambda kv: -kv[1].saving_bytes)
    models_ = sorted(by_model(fleet.reports, models).items(), key=lambda kv: -kv[1].saving_bytes)
    saving = sorted(fleet.reports, key=lambda r: -_saving(r))
    everything = totals(fleet.reports, lambda _: "fleet").get("fleet", Totals())
    return InodeView(
        hosts=len(collected),
        collected_from=min(times, default=None),
        collected_to=max(times, default=None),
        fleet=_totals("fleet", everything),
        by_model=[_totals(key, total) for key, total in models_],
        by_host=[_totals(key, total) for key, total in hosts[:limit]],
        filesystems=[_filesystem(r, models) for r in saving[:limit]],
        problems=fleet.problems,
        unreadable={c.host: c.error for c in collected if c.facts is None},
    )


def _saving(report: Report) -> int:
    return sum(f.saving_bytes for f in report.findings)


def _totals(key: str, total: Totals) -> InodeTotals:
    return InodeTotals(key=key, saving_bytes=total.saving_bytes, **asdict(total))


def _filesystem(report: Report, models: Mapping[str, str]) -> InodeFilesystem:
    fs = report.filesystem
    return InodeFilesystem(
        host=fs.host,
        model=models.get(fs.host, ""),
        device=fs.device,
        mount=fs.mount,
        fstype=fs.fstype,
        inodes_total=fs.inodes_total,
        inodes_used=fs.inodes_used,
        inode_table_bytes=report.inode_table_bytes,
        reserved_bytes=report.reserved_bytes,
        short=report.short,
        saving_bytes=_saving(report),
        findings=[InodeFinding.model_validate(f, from_attributes=True) for f in report.findings],
    )


@dataclass(frozen=True, slots=True)
class ReservePlan:
    """What giving back a model's reserved blocks would touch and free."""

    model: str
    percent: int
    mounts: list[str]
    hosts: int
    filesystems: int
    saving_bytes: int


def reserve_plan(
    collected: list[Collected], models: Mapping[str, str], model: str, percent: int
) -> ReservePlan:
    """The data mounts of `model`'s hosts that reserve more than `percent` %, from their newest
    facts: every mount a finding names on any of them (a host lacking one fails its step, which
    pauses the change for a look)."""
    if not collected:
        raise NothingToPropose(
            "no filesystem facts collected yet: collect them first "
            f"(POST /api/v1/storage/inodes/collect, workflow {WORKFLOW})"
        )
    facts = {
        c.host: c.facts for c in collected if c.facts is not None and models.get(c.host) == model
    }
    if not facts:
        raise NothingToPropose(f"no collected filesystem facts from hosts of model {model!r}")
    policy = Policy(reserved_percent=Fraction(percent))
    findings = [
        f
        for report in analyze_fleet(facts, policy=policy).reports
        for f in report.findings
        if f.kind == "reserved_blocks"
    ]
    if not findings:
        raise NothingToPropose(
            f"no data filesystem of model {model!r} reserves more than {percent} % for root"
        )
    return ReservePlan(
        model=model,
        percent=percent,
        mounts=sorted({f.mount for f in findings}, key=_natural),
        hosts=len({f.host for f in findings}),
        filesystems=len(findings),
        saving_bytes=sum(f.saving_bytes for f in findings),
    )


def _natural(mount: str) -> tuple[str, int]:
    """/data2 before /data10."""
    stem = mount.rstrip("0123456789")
    return stem, int(mount[len(stem) :] or -1)
