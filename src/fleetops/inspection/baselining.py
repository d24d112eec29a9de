"""Building per-model baselines from stored results, one audited version at a time.

A baseline is built from the latest quiet, healthy result of each in-service host of a model;
each rebuild is a new active version and the old one stays readable for the results it judged.
The statistics themselves are in `baselines`; this is the part that reads and writes the database.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.db import lock
from fleetops.devices.enums import Lifecycle
from fleetops.inspection.baselines import MIN_SAMPLES, Band, Baseline
from fleetops.inspection.enums import Outcome
from fleetops.inspection.verdicts import LoadLimits, busy_reasons, to_result
from fleetops.models import BaselineRow, ProbeRun, utcnow

BASELINE_WINDOW = timedelta(days=30)


def baseline_label(row: BaselineRow) -> str:
    """`model/probe v3`: how results and the audit log name a baseline version."""
    return f"{row.model}/{row.probe} v{row.version}"


def to_baseline(row: BaselineRow) -> Baseline:
    """A stored baseline version as the judge reads it."""
    return Baseline(
        probe=row.probe,
        samples=row.samples,
        bands={name: Band(**band) for name, band in row.bands.items()},
    )


def bands_json(baseline: Baseline) -> dict[str, dict[str, Any]]:
    """A baseline's bands as stored: {point: {median, mad, low, high, unit}}."""
    return {name: dataclasses.asdict(band) for name, band in baseline.bands.items()}


def healthy_runs(
    session: Session,
    model: str,
    probe: str,
    *,
    limits: LoadLimits | None = None,
    now: datetime | None = None,
) -> list[ProbeRun]:
    """The result each in-service host of the model contributes to its baseline, oldest first.

    Per host, the latest result measured in service on a quiet machine within BASELINE_WINDOW;
    a host whose latest such result failed contributes nothing.
    """
    since = (now or utcnow()) - BASELINE_WINDOW
    rows = session.scalars(
        select(ProbeRun)
        .where(
            ProbeRun.model == model,
            ProbeRun.probe == probe,
            ProbeRun.status != Outcome.ERROR,
            ProbeRun.host_state == Lifecycle.IN_SERVICE,
            ProbeRun.at >= since,
        )
        .order_by(ProbeRun.id.desc())
    )
    latest: dict[str, ProbeRun] = {}
    for run in rows:
        if run.hostname not in latest and quiet(run, limits):
            latest[run.hostname] = run
    return sorted((r for r in latest.values() if r.status != Outcome.FAIL), key=lambda r: r.id)


def quiet(run: ProbeRun, limits: LoadLimits | None) -> bool:
    """Whether a stored result was measured on a quiet machine (unknown load: no)."""
    try:
        result = to_result(run)
    except TypeError:  # a load reading without the LoadSample fields
        return False
    return bool(result.points) and not busy_reasons(result, limits)


def build_baseline(
    session: Session,
    model: str,
    probe: str,
    *,
    actor: str | AuditContext,
    reason: str,
    limits: LoadLimits | None = None,
) -> BaselineRow | None:
    """Build a new baseline version from the model's healthy results, or None with too few.

    The new version becomes the active one; the previous stays, inactive, for the results it
    judged."""
    ctx = actor if isinstance(actor, AuditContext) else AuditContext(actor, source="inspection")
    lock(session, f"baseline:{model}:{probe}")  # one build of a (model, probe) at once
    runs = healthy_runs(session, model, probe, limits=limits)
    if len(runs) < MIN_SAMPLES:
        return None
    built = Baseline.build([to_result(r) for r in runs])
    previous = session.scalar(
        select(func.max(BaselineRow.version)).where(
            BaselineRow.model == model, BaselineRow.probe == probe
        )
    )
    session.execute(
        update(BaselineRow)
        .where(BaselineRow.model == model, BaselineRow.probe == probe, BaselineRow.active)
        .values(active=False)
    )
    row = BaselineRow(
        model=model,
        probe=probe,
        version=(previous or 0) + 1,
        active=True,
        samples=built.samples,
        bands=bands_json(built),
        source_runs=[r.id for r in runs],
        built_by=ctx.actor,
        reason=reason,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx,
        action="baseline.build",
        entity_type="baseline",
        entity_id=row.id,
        after={
            "baseline": baseline_label(row),
            "samples": row.samples,
            "hosts": [r.hostname for r in runs],
            "limits": (limits or LoadLimits()).kwargs(),
            "reason": reason,
        },
    )
    return row
