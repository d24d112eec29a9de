"""Running probes on hosts, storing their results, and judging them against baselines.

The change engine runs the `inspect_hardware` action through `InspectionService.action`: each
probe runs over the host's executor, its result is stored as a `ProbeRun` with the verdict
against the active baseline of the host's hardware model, and the action's exit code tells the
change whether the host passed. Baselines are built from the latest quiet, healthy result of each
in-service host of a model; each rebuild is a new version and the old one stays readable.

This module holds the use cases (the action, recording a result, submitting an inspection) and
stays the public place for the domain's names; the queries are in `repository`, baseline builds
in `baselining`, the busy limits in `verdicts` and the errors in `exceptions`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fleetops.audit.service import AuditContext
from fleetops.changes import service as changes
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.executor import Executor, Result, Target
from fleetops.changes.operations import OperationLibrary
from fleetops.db import session_scope
from fleetops.inspection import enums
from fleetops.inspection.baselines import MIN_SAMPLES, Verdict, judge
from fleetops.inspection.baselining import baseline_label, build_baseline, healthy_runs, to_baseline
from fleetops.inspection.health import smart_verdict
from fleetops.inspection.probes import (
    CpuProbe,
    DiskProbe,
    MemoryProbe,
    NetworkProbe,
    Probe,
    ProbeError,
    ProbeResult,
    SmartProbe,
)
from fleetops.inspection.repository import active_baseline, host_facts
from fleetops.inspection.verdicts import LoadLimits
from fleetops.models import BaselineRow, ChangeRequest, ProbeRun

P = enums.Probe
PROBES = tuple(P)
DEFAULT_PROBES = (P.CPU, P.MEMORY, P.DISK)  # smart needs a device, network an iperf3 server
BASELINED = (P.CPU, P.MEMORY, P.DISK, P.NETWORK)  # smart: by thresholds (see inspection.health)
TOOLS: dict[str, str] = {P.CPU: "sysbench", P.MEMORY: "sysbench", P.DISK: "fio"}
DEFAULT_DIRECTORY = "/var/tmp"
WORKFLOW = "inspect-hardware"
AUTO_ACTOR = "inspection"


# --- probes --------------------------------------------------------------------------------------


def probe_names(value: Any) -> list[str]:
    """The probes asked for (a list or a comma-separated string); None: the default ones, and
    an empty string or list: none (a verification configured without hardware probes)."""
    if value is None:
        return [p.value for p in DEFAULT_PROBES]
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"probes must be a list or a comma-separated string, got {value!r}")
    names = list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
    if unknown := [n for n in names if n not in PROBES]:
        raise ValueError(
            f"unknown probe(s) {', '.join(map(repr, unknown))}; known probes: {', '.join(PROBES)}"
        )
    return names


def build_probe(
    name: str,
    *,
    quick: bool = False,
    directory: str = DEFAULT_DIRECTORY,
    device: str = "",
    iperf_server: str = "",
) -> Probe:
    """The probe called `name`; `quick` cuts every run to about a second, for tests and labs."""
    if name == P.NETWORK:
        if not iperf_server:
            raise ValueError(
                "the network probe measures against an iperf3 server: give iperf_server, "
                "e.g. perf-01 or perf-01:5201"
            )
        server, _, port = iperf_server.partition(":")
        seconds, settle = (1, 0.3) if quick else (5, 1.0)
        return NetworkProbe(server, port=int(port or 5201), seconds=seconds, settle_s=settle)
    if name == P.SMART:
        if not device:
            raise ValueError("the smart probe reads one drive: give its device, e.g. /dev/sda")
        return SmartProbe(device)
    if name == P.DISK:
        short = {"size_mib": 64, "runtime_s": 0.3, "settle_s": 0.3} if quick else {}
        return DiskProbe.in_directory(directory, **short)
    if name == P.CPU:
        return CpuProbe(time_s=1, settle_s=0.3) if quick else CpuProbe()
    if name == P.MEMORY:
        return MemoryProbe(time_s=1, settle_s=0.3) if quick else MemoryProbe()
    raise ValueError(f"unknown probe {name!r}; known probes: {', '.join(PROBES)}")


@dataclass(frozen=True)
class Measured:
    """One probe run on one host: the parsed result, or why there is none."""

    probe: str
    result: ProbeResult | None
    error: str = ""
    unreachable: bool = False  # the command could not run at all
    duration_s: float = 0.0


async def measure(executor: Executor, target: Target, probe: Probe, timeout: float) -> Measured:
    """Run one probe's command on the host and parse its output; never raises."""
    start = time.monotonic()
    ran = await executor.run(target, probe.command(), timeout=timeout)
    took = ran.duration_s or time.monotonic() - start
    if ran.exit_code is None:
        reason = f"could not run the {probe.name} probe: {ran.error or 'no reason given'}"
        return Measured(probe.name, None, reason, unreachable=True, duration_s=took)
    if ran.exit_code != 0:
        return Measured(probe.name, None, _exit_reason(probe.name, ran), duration_s=took)
    try:
        return Measured(probe.name, probe.parse(ran.stdout), duration_s=took)
    except ProbeError as exc:
        cut = " (the output was cut: it exceeded the executor's limit)" if ran.truncated else ""
        return Measured(
            probe.name, None, f"unreadable {probe.name} output: {exc}{cut}", False, took
        )


def _exit_reason(probe: str, ran: Result) -> str:
    tool = TOOLS.get(probe, probe)
    if ran.exit_code == 127:
        return f"{tool} is not installed on the host: install it (apt-get install -y {tool})"
    lines = (ran.stderr or ran.stdout).strip().splitlines()
    tail = lines[-1][:300] if lines else "no output"
    return f"the {probe} probe ({tool}) exited {ran.exit_code}: {tail}"


# --- the action ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostInfo:
    """What a result records about its host at measurement time."""

    hostname: str
    host_id: int | None = None
    model: str = ""
    state: str = ""


@dataclass(frozen=True)
class Outcome:
    """A stored result's verdict, as the action reports it."""

    run_id: int
    probe: str
    status: str
    reasons: list[str]
    baseline: str  # "model/probe v3", or "" when judged on none
    unreachable: bool = False

    def line(self, *, status_first: bool = False) -> str:
        """`disk: fail (baseline R740/disk v2): reasons`; status first for stderr."""
        judged = f" (baseline {self.baseline})" if self.baseline else ""
        head = f"{self.status}: {self.probe}" if status_first else f"{self.probe}: {self.status}"
        return f"{head}{judged}: {'; '.join(self.reasons)}"


class InspectionService:
    """The `inspect_hardware` action the change engine runs, with the database it needs."""

    def __init__(
        self, sessions: sessionmaker[Session], *, limits: LoadLimits | None = None
    ) -> None:
        self.sessions = sessions
        self.limits = limits or LoadLimits()

    async def action(
        self, executor: Executor, target: Target, params: Mapping[str, Any], timeout: float
    ) -> Result:
        """Probe the host, store and judge each result; exit 0 only when every verdict passes."""
        quick, record_only = bool(params.get("quick")), bool(params.get("record_only"))
        directory = str(params.get("directory") or DEFAULT_DIRECTORY)
        device = str(params.get("device") or "")
        server = str(params.get("iperf_server") or "")
        try:
            names = probe_names(params.get("probes"))
            probes = [
                build_probe(
                    name, quick=quick, directory=directory, device=device, iperf_server=server
                )
                for name in names
            ]
        except ValueError as exc:
            return Result(exit_code=None, error=str(exc))
        if not probes:
            return Result(exit_code=0, stdout="no inspection probe requested: nothing to judge\n")
        change_id = int(params["change_id"]) if params.get("change_id") else None
        deadline = time.monotonic() + timeout
        host = await asyncio.to_thread(self._host, target.hostname)
        outcomes: list[Outcome] = []
        for name, probe in zip(names, probes, strict=True):
            left = deadline - time.monotonic()
            if left < 1:
                measured = Measured(
                    name, None, f"no time left for the {name} probe: raise the operation's timeout"
                )
            else:
                measured = await measure(executor, target, probe, min(probe.timeout_s, left))
            outcomes.append(await asyncio.to_thread(self._record, host, measured, change_id))
        return action_result(outcomes, record_only=record_only)

    def _host(self, hostname: str) -> HostInfo:
        with self.sessions() as session:
            row = host_facts(session, hostname=hostname)
        if row is None:
            return HostInfo(hostname)
        host_id, state, model = row
        return HostInfo(hostname, host_id, model, state)

    def _record(self, host: HostInfo, measured: Measured, change_id: int | None) -> Outcome:
        with session_scope(self.sessions) as session:
            run, baseline = record(session, host, measured, change_id=change_id, limits=self.limits)
            return Outcome(
                run.id,
                run.probe,
                run.status,
                list(run.reasons),
                baseline_label(baseline) if baseline else "",
                measured.unreachable,
            )


def action_result(outcomes: Sequence[Outcome], *, record_only: bool = False) -> Result:
    """The action's result: 0 when all passed (or only recorded), 1 with the reasons otherwise."""
    summary = "".join(o.line() + "\n" for o in outcomes)
    verdicts = "verdicts: " + ", ".join(f"{o.probe} {o.status}" for o in outcomes)
    if unreachable := [o for o in outcomes if o.unreachable]:
        return Result(exit_code=None, stdout=summary, error="; ".join(unreachable[0].reasons))
    errors = [o for o in outcomes if o.status == enums.Outcome.ERROR]
    if record_only and not errors:
        return Result(exit_code=0, stdout=summary + verdicts + " (recorded only)\n")
    order: dict[str, int] = {
        enums.Outcome.ERROR: 0,
        enums.Outcome.FAIL: 1,
        enums.Outcome.INCONCLUSIVE: 2,
    }
    bad = sorted(
        (o for o in outcomes if o.status != enums.Outcome.PASS), key=lambda o: order[o.status]
    )
    if not bad:
        return Result(exit_code=0, stdout=summary + verdicts + "\n")
    stderr = "".join(o.line(status_first=True) + "\n" for o in bad) + verdicts + "\n"
    return Result(exit_code=1, stdout=summary, stderr=stderr)


# --- storing and judging -------------------------------------------------------------------------


def record(
    session: Session,
    host: HostInfo,
    measured: Measured,
    *,
    change_id: int | None = None,
    limits: LoadLimits | None = None,
) -> tuple[ProbeRun, BaselineRow | None]:
    """Store one measurement with its verdict; build the model's first baseline when due."""
    run = ProbeRun(
        host_id=host.host_id,
        hostname=host.hostname,
        model=host.model,
        probe=measured.probe,
        host_state=host.state,
        change_id=change_id,
        duration_s=round(measured.duration_s, 3),
    )
    baseline: BaselineRow | None = None
    result = measured.result
    if result is None:
        run.status, run.reasons = enums.Outcome.ERROR, [measured.error]
    else:
        run.tool_version = (result.tool_version or "")[:64]
        run.points, run.units = dict(result.points), dict(result.units)
        run.load = dataclasses.asdict(result.load)
        baseline, verdict = _verdict(session, host, result, limits or LoadLimits())
        run.status, run.reasons, run.ratios = verdict.status, verdict.reasons, verdict.ratios
        run.baseline_id = baseline.id if baseline else None
    session.add(run)
    session.flush()
    return run, baseline


def _verdict(
    session: Session, host: HostInfo, result: ProbeResult, limits: LoadLimits
) -> tuple[BaselineRow | None, Verdict]:
    if result.probe not in BASELINED:
        return None, smart_verdict(result)  # any drive: lost sectors are lost on every model
    if not host.model:
        why = (
            f"{host.hostname} has no hardware model: set its model in the inventory so it is "
            "compared with its peers"
        )
        return None, Verdict(enums.Outcome.INCONCLUSIVE, {}, [why])
    baseline = active_baseline(session, host.model, result.probe)
    if baseline is None:
        baseline = build_baseline(
            session,
            host.model,
            result.probe,
            actor=AUTO_ACTOR,
            reason="built automatically: a result was judged while the model had no baseline",
        )
    if baseline is None:
        count = len(healthy_runs(session, host.model, result.probe))
        why = (
            f"model {host.model} has no {result.probe} baseline yet: {count} healthy result(s), "
            f"{MIN_SAMPLES} needed (inspect in-service hosts with record_only, then build one)"
        )
        return None, Verdict(enums.Outcome.INCONCLUSIVE, {}, [why])
    return baseline, judge(result, to_baseline(baseline), **limits.kwargs())


def result_json(run: ProbeRun, baseline: BaselineRow | None = None) -> dict[str, Any]:
    """A result as the API, the CLI and the pages show it; with its baseline when given."""
    lowest = min(run.ratios, key=lambda name: run.ratios[name]) if run.ratios else None
    body: dict[str, Any] = {
        "id": run.id,
        "host": run.hostname,
        "host_id": run.host_id,
        "model": run.model,
        "probe": run.probe,
        "status": run.status,
        "reasons": list(run.reasons),
        "points": dict(run.points),
        "units": dict(run.units),
        "ratios": dict(run.ratios),
        "lowest_point": lowest,
        "lowest_ratio": run.ratios[lowest] if lowest else None,
        "load": dict(run.load),
        "tool_version": run.tool_version,
        "baseline_id": run.baseline_id,
        "host_state": run.host_state,
        "change_id": run.change_id,
        "duration_s": run.duration_s,
        "at": run.at.isoformat(),
    }
    if baseline is not None:
        body["baseline"] = baseline_json(baseline)
    return body


def baseline_json(row: BaselineRow) -> dict[str, Any]:
    """A baseline version as the API, the CLI and the pages show it."""
    return {
        "id": row.id,
        "model": row.model,
        "probe": row.probe,
        "version": row.version,
        "active": row.active,
        "samples": row.samples,
        "bands": dict(row.bands),
        "source_runs": list(row.source_runs),
        "built_by": row.built_by,
        "reason": row.reason,
        "built_at": row.built_at.isoformat(),
    }


# --- starting an inspection ----------------------------------------------------------------------


@dataclass(frozen=True)
class InspectionRequest:
    selector: str
    probes: Sequence[str] = DEFAULT_PROBES
    device: str = ""
    iperf_server: str = ""
    quick: bool = False
    directory: str = DEFAULT_DIRECTORY
    record_only: bool = False
    reason: str = ""


def submit(
    session: Session,
    ctx: AuditContext,
    req: InspectionRequest,
    *,
    library: OperationLibrary,
    policy: ApprovalPolicy,
) -> ChangeRequest:
    """Submit the inspect-hardware change: a standard change, approved by configuration."""
    workflow, pin = changes.pinned_workflow(session, WORKFLOW, library=library)
    names = probe_names(list(req.probes))
    return changes.submit(
        session,
        ctx,
        changes.Submission(
            workflow=workflow.name,
            version=workflow.version,
            title=f"Inspect hardware ({', '.join(names)}): {_shorten(req.selector, 60)}",
            selector=req.selector,
            params={
                "probes": ",".join(names),
                "directory": req.directory,
                "quick": req.quick,
                "record_only": req.record_only,
                "device": req.device,
                "iperf_server": req.iperf_server,
            },
            reason=req.reason,
        ),
        library=library,
        policy=policy,
        preapproved="hardware inspection",
        pin=pin,
    )


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
