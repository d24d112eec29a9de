"""Measure diagnosis against the simulator's ground truth.

A fresh database, the generated fleet, and a workload with scheduled faults; the workload's lines go
through the real ingestion path (HTTP `POST /api/v1/logs` into the app, mining, aggregation,
detectors, findings) faster than real time, on simulated time. Then every finding is matched with
the faults: a finding is right when it names the fault's entity (the host, the ToR switch, the
uplink) while the fault is active; a finding about a host behind a faulty switch or uplink is a
symptom, reported apart and not counted either way; anything else is a false positive."""

from __future__ import annotations

import gc
import secrets
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from fleetops.audit.service import AuditContext
from fleetops.config import Settings
from fleetops.db import make_engine, make_session_factory, session_scope, upgrade
from fleetops.inventory.apply import apply_document
from fleetops.inventory.document import InventoryDoc
from fleetops.logs import service as logs_service
from fleetops.main import create_app
from fleetops.models import Finding
from fleetops.sim.faults import Fault, schedule_faults
from fleetops.sim.feeder import ndjson
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload

SCORED_KINDS = ("straggler", "slow_link", "slow_disk", "hardware_error")
MATCH_BEFORE = timedelta(seconds=10)  # a finding may name a fault a little before its onset...
MATCH_AFTER = timedelta(minutes=2)  # ...and until shortly after it ended (windows lag)


@dataclass(frozen=True)
class EvalConfig:
    hosts: int = 1000
    faults: int = 20
    seed: int = 1
    minutes: float = 20.0  # simulated time over which faults are scheduled
    warmup_minutes: float = 2.0  # healthy time first, so baselines exist
    step_seconds: float = 2.0  # simulated seconds per HTTP request
    database_url: str | None = None
    start: datetime | None = None  # simulated start (default: recent past); fixes window alignment


async def run(
    config: EvalConfig, progress: Callable[[float], None] | None = None
) -> dict[str, Any]:
    gc.set_threshold(50_000, 20, 10)  # as `fleetops serve` does, for ingestion
    with tempfile.TemporaryDirectory(prefix="fleetops-eval-") as tmp:
        url = config.database_url or f"sqlite:///{Path(tmp) / 'eval.db'}"
        return await _run(config, url, Path(tmp), progress)


async def _run(
    config: EvalConfig, url: str, tmp: Path, progress: Callable[[float], None] | None
) -> dict[str, Any]:
    racks = max(1, config.hosts // 25)
    fleet = generate(hosts=config.hosts, racks=racks, seed=config.seed)
    engine, sessions, token = _prepare_database(url, fleet)
    total = timedelta(minutes=config.warmup_minutes + config.minutes + 3)
    # Simulated time lies in the recent past, so no line looks like clock skew.
    start = config.start or (datetime.now(UTC) - total - timedelta(hours=1)).replace(microsecond=0)
    fault_start = start + timedelta(minutes=config.warmup_minutes)
    faults = schedule_faults(
        fleet,
        count=config.faults,
        seed=config.seed,
        start=fault_start,
        duration=timedelta(minutes=config.minutes),
    )
    workload = Workload(fleet, seed=config.seed, start=start, faults=faults)
    app = create_app(_eval_settings(tmp, url))
    async with app.router.lifespan_context(app):
        clock = _Clock(start=start, total=total, step=timedelta(seconds=config.step_seconds))
        lines = await _feed(httpx.ASGITransport(app=app), token, workload, clock, progress)
        await app.state.log_services.drain()
    with session_scope(sessions) as session:
        found = list(session.scalars(select(Finding).order_by(Finding.id)))
        report = score(faults, found, fleet)
    engine.dispose()
    report["lines"] = lines
    report["config"] = {
        "hosts": config.hosts,
        "faults": config.faults,
        "seed": config.seed,
        "minutes": config.minutes,
    }
    return report


def _prepare_database(url: str, fleet: InventoryDoc) -> tuple[Engine, sessionmaker[Session], str]:
    """Migrate a fresh database, load the fleet and mint the token the simulator ingests with."""
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    ctx = AuditContext(actor="system:eval")
    with session_scope(sessions) as session:
        apply_document(session, ctx, fleet)
        _, token = logs_service.create_ingest_token(session, ctx, name="simulator")
    return engine, sessions, token


def _eval_settings(tmp: Path, url: str) -> Settings:
    """An app that only ingests and diagnoses: no change engine, no real-time pacing, and a queue
    deep enough that the faster-than-real-time feed is never refused."""
    return Settings(
        data_dir=tmp,
        database_url=url,
        admin_password=secrets.token_urlsafe(16),
        engine_enabled=False,
        logs_realtime=False,
        ingest_queue_lines=1_000_000,
    )


@dataclass(frozen=True)
class _Clock:
    """The simulated time span the workload is fed over, one HTTP request per step."""

    start: datetime
    total: timedelta
    step: timedelta


async def _feed(
    transport: httpx.ASGITransport,
    token: str,
    workload: Workload,
    clock: _Clock,
    progress: Callable[[float], None] | None,
) -> int:
    """Post the workload's lines step by step through the real ingestion API; the lines sent."""
    lines = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    async with httpx.AsyncClient(transport=transport, base_url="http://eval") as client:
        at = clock.start
        while at < clock.start + clock.total:
            at += clock.step
            batch = workload.advance(at)
            lines += len(batch)
            if batch:
                response = await client.post("/api/v1/logs", content=ndjson(batch), headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"ingestion refused a batch: {response.status_code} {response.text}"
                    )
            if progress is not None:
                progress((at - clock.start) / clock.total)
    return lines


def _scope(fault: Fault, fleet: InventoryDoc) -> set[tuple[str, str]]:
    """Entities whose symptoms a fault explains: the hosts behind a faulty ToR or uplink."""
    if fault.kind not in ("bad_tor", "congested_link"):
        return set()
    tor = fault.target.split("|")[0]
    rack = next((s.rack for s in fleet.switches if s.name == tor), None)
    return {("host", h.hostname) for h in fleet.hosts if rack is not None and h.rack == rack}


def _near(fault: Fault, at: datetime) -> bool:
    """Whether a finding first seen at `at` can be about the fault: windows lag, so a little
    before its onset until shortly after its end (an open fault never ends)."""
    return (
        fault.onset - MATCH_BEFORE
        <= at
        <= (fault.end or datetime.max.replace(tzinfo=UTC)) + MATCH_AFTER
    )


@dataclass
class _Tally:
    """How the scored findings matched the faults, faults by their index in the list."""

    first_hit: dict[int, float] = field(default_factory=dict)  # seconds from onset to a finding
    found_by: dict[int, str] = field(default_factory=dict)  # what that first finding was
    true_pos: int = 0
    symptoms: int = 0
    false_pos: list[dict[str, Any]] = field(default_factory=list)


def _record_hits(tally: _Tally, finding: Finding, faults: list[Fault]) -> bool:
    """Credit each fault the finding names with its delay, if earliest; whether it named one."""
    entity = (finding.entity_type, finding.entity)
    matched = False
    for i, fault in enumerate(faults):
        if not _near(fault, finding.first_seen):
            continue
        if entity == fault.entity():
            matched = True
            delay = max(0.0, (finding.first_seen - fault.onset).total_seconds())
            if delay < tally.first_hit.get(i, float("inf")):
                tally.first_hit[i] = delay
                tally.found_by[i] = finding.kind + (
                    f"/{finding.details['signature']}" if "signature" in finding.details else ""
                )
    return matched


def _is_symptom(finding: Finding, faults: list[Fault], fleet: InventoryDoc) -> bool:
    """Whether a fault behind the finding's host (its ToR, its uplink) explains the finding."""
    entity = (finding.entity_type, finding.entity)
    return any(entity in _scope(f, fleet) and _near(f, finding.first_seen) for f in faults)


def _false_positive(finding: Finding) -> dict[str, Any]:
    """What the report shows of a finding no fault explains."""
    return {
        "kind": finding.kind,
        "entity": finding.entity,
        "title": finding.title,
        "first_seen": finding.first_seen.isoformat(),
        "details": finding.details,
    }


def _by_kind(faults: list[Fault], first_hit: dict[int, float]) -> dict[str, dict[str, Any]]:
    """Recall and time to finding per fault kind, with the targets no finding named."""
    by_kind: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[int]] = defaultdict(list)
    for i, fault in enumerate(faults):
        groups[fault.kind].append(i)
    for kind, members in sorted(groups.items()):
        delays = [first_hit[i] for i in members if i in first_hit]
        by_kind[kind] = {
            "faults": len(members),
            "detected": len(delays),
            "recall": round(len(delays) / len(members), 3),
            "p95_time_to_finding_s": _p95(delays),
            "missed": [faults[i].target for i in members if i not in first_hit],
        }
    return by_kind


def _tally(scored: list[Finding], faults: list[Fault], fleet: InventoryDoc) -> _Tally:
    """Sort each finding into right (names a fault), symptom (explained by one) or false."""
    tally = _Tally()
    for finding in scored:
        if _record_hits(tally, finding, faults):
            tally.true_pos += 1
        elif _is_symptom(finding, faults, fleet):
            tally.symptoms += 1
        else:
            tally.false_pos.append(_false_positive(finding))
    return tally


def _fault_rows(faults: list[Fault], tally: _Tally) -> list[dict[str, Any]]:
    """Each injected fault with how soon and by what it was found (None: missed)."""
    return [
        {
            "kind": f.kind,
            "target": f.target,
            "onset": f.onset.isoformat(),
            "end": f.end.isoformat() if f.end else None,
            "intensity": f.intensity,
            "time_to_finding_s": tally.first_hit.get(i),
            "found_by": tally.found_by.get(i),
        }
        for i, f in enumerate(faults)
    ]


def score(faults: list[Fault], findings: list[Finding], fleet: InventoryDoc) -> dict[str, Any]:
    scored = [f for f in findings if f.kind in SCORED_KINDS]
    tally = _tally(scored, faults, fleet)
    judged = tally.true_pos + len(tally.false_pos)
    precision = tally.true_pos / judged if judged else 1.0
    return {
        "precision": round(precision, 3),
        "recall": round(len(tally.first_hit) / len(faults), 3) if faults else 1.0,
        "p95_time_to_finding_s": _p95(list(tally.first_hit.values())),
        "findings": len(scored),
        "true_positive_findings": tally.true_pos,
        "symptom_findings": tally.symptoms,
        "false_positive_findings": len(tally.false_pos),
        "false_positives": tally.false_pos[:20],
        "by_kind": _by_kind(faults, tally.first_hit),
        "faults": _fault_rows(faults, tally),
    }


def _p95(values: list[float]) -> float | None:
    return round(float(np.percentile(values, 95)), 1) if values else None
