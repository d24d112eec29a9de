"""Queries over stored inspection results and baseline versions.

Reads only: the use cases in `service` and `baselining` decide what to store, these find it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from fleetops.inspection.enums import Outcome
from fleetops.inspection.exceptions import InspectionNotFound
from fleetops.models import BaselineRow, HardwareModel, Host, ProbeRun

OUTLIER_MARGIN = 0.15  # a point this far below its model's median is worth a look


def active_baseline(session: Session, model: str, probe: str) -> BaselineRow | None:
    return session.scalar(
        select(BaselineRow)
        .where(BaselineRow.model == model, BaselineRow.probe == probe, BaselineRow.active)
        .order_by(BaselineRow.version.desc())
        .limit(1)
    )


def get_baseline(session: Session, baseline_id: int) -> BaselineRow | None:
    return session.get(BaselineRow, baseline_id)


def list_baselines(
    session: Session, *, model: str | None = None, probe: str | None = None, history: bool = False
) -> list[BaselineRow]:
    """Baselines by model and probe, newest version first; only the active ones without
    `history`."""
    stmt = select(BaselineRow)
    if model is not None:
        stmt = stmt.where(BaselineRow.model == model)
    if probe is not None:
        stmt = stmt.where(BaselineRow.probe == probe)
    if not history:
        stmt = stmt.where(BaselineRow.active)
    order = (BaselineRow.model, BaselineRow.probe, BaselineRow.version.desc())
    return list(session.scalars(stmt.order_by(*order)))


def get_result(session: Session, run_id: int) -> ProbeRun:
    run = session.get(ProbeRun, run_id)
    if run is None:
        raise InspectionNotFound(f"no inspection result {run_id}")
    return run


def _latest_ids() -> Select[Any]:
    """The newest result id of each (host, probe)."""
    return select(func.max(ProbeRun.id)).group_by(ProbeRun.hostname, ProbeRun.probe)


def query_results(
    session: Session,
    *,
    hostname: str | None = None,
    model: str | None = None,
    probe: str | None = None,
    status: str | None = None,
    change_id: int | None = None,
    latest: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[ProbeRun], int]:
    """Results newest first, and how many match; `latest` keeps each host's last per probe."""
    stmt = select(ProbeRun)
    for column, value in (
        (ProbeRun.hostname, hostname),
        (ProbeRun.model, model),
        (ProbeRun.probe, probe),
        (ProbeRun.status, status),
        (ProbeRun.change_id, change_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if latest:
        stmt = stmt.where(ProbeRun.id.in_(_latest_ids()))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(ProbeRun.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def latest_results(
    session: Session, *, model: str | None = None, probe: str | None = None
) -> list[ProbeRun]:
    """Each host's latest result of each probe, by hostname."""
    rows, _ = query_results(session, model=model, probe=probe, latest=True, limit=1_000_000)
    return sorted(rows, key=lambda r: (r.hostname, r.probe))


def outliers(
    session: Session,
    *,
    model: str | None = None,
    probe: str | None = None,
    margin: float = OUTLIER_MARGIN,
) -> list[ProbeRun]:
    """Latest results that failed, or whose lowest point is `margin` below its model's median;
    worst first."""
    found = [
        r
        for r in latest_results(session, model=model, probe=probe)
        if r.status == Outcome.FAIL or (r.ratios and min(r.ratios.values()) < 1 - margin)
    ]
    return sorted(
        found, key=lambda r: (r.status != Outcome.FAIL, min(r.ratios.values(), default=0))
    )


def host_facts(session: Session, *, hostname: str) -> tuple[int, str, str] | None:
    """(id, state, hardware model name or "") of the host a result is recorded for."""
    row = session.execute(
        select(Host.id, Host.state, HardwareModel.name)
        .outerjoin(HardwareModel, HardwareModel.id == Host.model_id)
        .where(Host.hostname == hostname)
    ).first()
    if row is None:
        return None
    return row[0], row[1], row[2] or ""
