"""Inspection JSON API: probe results with their verdicts, and per-model baselines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from sqlalchemy import select

from fleetops.auth.dependencies import Operator, SessionDep, Viewer, audit_context
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.errors import ERROR_RESPONSES
from fleetops.inspection import baselining, repository, service
from fleetops.inspection.baselines import MIN_SAMPLES
from fleetops.inspection.exceptions import ModelNotFound, NotEnoughResults
from fleetops.inspection.schemas import (
    BaselineBuild,
    BaselineRead,
    InspectionDetail,
    InspectionPage,
    InspectionStart,
    InspectionStarted,
    ProbeName,
    Status,
)
from fleetops.inspection.verdicts import LoadLimits
from fleetops.kit.pagination import MAX_OFFSET, Limit, Offset
from fleetops.models import HardwareModel

router = APIRouter(tags=["inspection"], responses=ERROR_RESPONSES)
ResultId = Annotated[int, Path(ge=1, le=MAX_OFFSET)]


@router.get("/inspections", response_model=InspectionPage)
def list_inspections(
    session: SessionDep,
    _: Viewer,
    host: Annotated[str | None, Query(max_length=253)] = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
    probe: ProbeName | None = None,
    status: Status | None = None,
    change: Annotated[int | None, Query(ge=1, le=MAX_OFFSET, description="change id")] = None,
    latest: Annotated[bool, Query(description="only each host's latest result per probe")] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Probe results with their verdicts, newest first."""
    rows, total = repository.query_results(
        session,
        hostname=host,
        model=model,
        probe=probe,
        status=status,
        change_id=change,
        latest=latest,
        limit=limit,
        offset=offset,
    )
    items = [service.result_json(r) for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/inspections/{result_id}", response_model=InspectionDetail)
def get_inspection(result_id: ResultId, session: SessionDep, _: Viewer) -> dict[str, Any]:
    """One result, with the baseline version it was judged on (its bands)."""
    run = repository.get_result(session, result_id)
    baseline = repository.get_baseline(session, run.baseline_id) if run.baseline_id else None
    return service.result_json(run, baseline)


@router.post("/inspections", response_model=InspectionStarted, status_code=status.HTTP_201_CREATED)
def start_inspection(
    body: InspectionStart, request: Request, session: SessionDep, who: Operator
) -> InspectionStarted:
    """Inspect the selected hosts: submits a standard (pre-approved) change of workflow
    inspect-hardware, which the engine runs a batch at a time."""
    settings = request.app.state.settings
    change = service.submit(
        session,
        audit_context(request, who),
        service.InspectionRequest(
            selector=body.selector,
            probes=body.probes,
            device=body.device,
            iperf_server=body.iperf_server,
            quick=body.quick,
            directory=body.directory,
            record_only=body.record_only,
            reason=body.reason,
        ),
        library=request.app.state.library,
        policy=ApprovalPolicy.of(settings),
    )
    return InspectionStarted(
        change_id=change.id, state=change.state, host_count=change.host_count, title=change.title
    )


@router.get("/baselines", response_model=list[BaselineRead])
def list_baselines(
    session: SessionDep,
    _: Viewer,
    model: Annotated[str | None, Query(max_length=64)] = None,
    probe: ProbeName | None = None,
    history: Annotated[bool, Query(description="every version, not only the active")] = False,
) -> list[dict[str, Any]]:
    """Baselines by model and probe, newest version first."""
    rows = repository.list_baselines(session, model=model, probe=probe, history=history)
    return [service.baseline_json(r) for r in rows]


@router.post("/baselines/build", response_model=BaselineRead, status_code=status.HTTP_201_CREATED)
def build_baseline(
    body: BaselineBuild, request: Request, session: SessionDep, who: Operator
) -> dict[str, Any]:
    """Build a new baseline version of a model's probe from its latest healthy results (at least
    5 in-service hosts, quiet while measured, within 30 days); the previous version stays, inactive.
    409 when too few hosts qualify."""
    if session.scalar(select(HardwareModel.id).where(HardwareModel.name == body.model)) is None:
        raise ModelNotFound(
            f"no hardware model {body.model!r}: give the name as the inventory has it"
        )
    limits = LoadLimits(body.busy_load, body.busy_cpu, body.busy_steal)
    row = baselining.build_baseline(
        session,
        body.model,
        body.probe,
        actor=audit_context(request, who),
        reason=body.reason,
        limits=limits,
    )
    if row is None:
        count = len(baselining.healthy_runs(session, body.model, body.probe, limits=limits))
        raise NotEnoughResults(
            f"model {body.model} has {count} healthy results of probe {body.probe}, "
            f"{MIN_SAMPLES} needed: inspect more in-service hosts of it (record only)"
        )
    return service.baseline_json(row)
