"""What a change will run, exactly as it will run, on a sample host of each stage.

An approver approves commands, not a workflow's name: the approval page and
`GET /changes/{id}/preview` show every step's command text (or built-in action and its
parameters, and what goes on stdin) rendered with the change's parameters for the first host of
each stage, the way the engine renders it (`engine.hostrun.step_operation`). Submission renders
the same, so a parameter that renders invalid for a host (an `http_check` URL off the host, a
word with shell syntax in it) is refused up front (422) instead of failing on every host later.
Secret values never reach command text (`workflows.check_workflow` refuses that flow); wherever
else they go (stdin, an action's input) the preview shows `***`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.changes.actions import refusal
from fleetops.changes.engine.hostrun import mask_secrets, phase_context, step_operation
from fleetops.changes.engine.runner import host_target
from fleetops.changes.executor import StepRefused, Target
from fleetops.changes.operations import OperationLibrary, OperationSpec
from fleetops.changes.specs import Issue, SpecError
from fleetops.changes.templating import render, render_value
from fleetops.changes.workflows import StepSpec, WorkflowSpec
from fleetops.models import ChangeRequest, HostRun


@dataclass(frozen=True)
class StepPreview:
    """One step as one host will run it."""

    stage: str
    hostname: str
    step: int  # the step's place among the host's steps in its stage
    operation: str
    risk: str
    runs: str  # the command text, or `action NAME {params}`
    stdin: str  # what is fed on stdin ("" for none)
    error: str  # why it cannot render for this host ("" when it can)
    invalid: bool = False  # its parameters do not fit the operation: submission refuses it
    as_user: str = ""  # the user the command runs as through sudo (`become`); "": the login


def host_steps(spec: WorkflowSpec) -> Iterator[tuple[int, list[tuple[str, StepSpec]]]]:
    """Each planned stage's index and what its hosts run: (stage name, step), checks of the
    verify stages that roll with it included."""
    for index, stage in enumerate(spec.stages):
        if not spec.planned(index):
            continue
        steps = [(stage.name, step) for step in stage.steps]
        for later in spec.stages[index + 1 :]:
            if not later.rolls_with_previous:
                break
            steps.extend((later.name, step) for step in later.steps)
        yield index, steps


def render_steps(
    spec: WorkflowSpec,
    params: Mapping[str, Any],
    library: OperationLibrary,
    samples: Mapping[int, Target],
    *,
    change_id: int,
    secrets: frozenset[str] = frozenset(),
) -> list[StepPreview]:
    """Every step of every planned stage rendered for that stage's sample host."""
    hidden = [str(params[name]) for name in secrets if params.get(name) not in (None, "")]
    out: list[StepPreview] = []
    for index, steps in host_steps(spec):
        target = samples.get(index)
        if target is None:
            continue
        for number, (stage, step) in enumerate(steps):
            out.append(_step(library, stage, number, step, params, target, change_id, hidden))
    return out


def check_renders(
    spec: WorkflowSpec,
    params: Mapping[str, Any],
    library: OperationLibrary,
    samples: Mapping[int, Target],
) -> None:
    """Raise a SpecError naming every step that cannot render for its stage's sample host."""
    issues = [
        Issue(f"stages[{p.stage}].steps[{p.step}] on {p.hostname}", p.error)
        for p in render_steps(spec, params, library, samples, change_id=0)
        if p.invalid
    ]
    if issues:
        raise SpecError(issues)


def samples(session: Session, change: ChangeRequest) -> dict[int, Target]:
    """Each planned stage's sample host: the first host of its first batch."""
    firsts: dict[int, int | None] = {}
    rows = session.execute(
        select(HostRun.stage_index, HostRun.host_id)
        .where(HostRun.change_id == change.id)
        .order_by(HostRun.stage_index, HostRun.batch_index, HostRun.id)
    )
    for stage_index, host_id in rows:
        firsts.setdefault(stage_index, host_id)
    return {i: host_target(session, h) for i, h in firsts.items() if h is not None}


def preview(
    session: Session,
    change: ChangeRequest,
    spec: WorkflowSpec,
    library: OperationLibrary,
    *,
    secrets: frozenset[str],
) -> list[StepPreview]:
    """A stored change's steps as they will run on each stage's sample host."""
    found = samples(session, change)
    return render_steps(spec, change.params, library, found, change_id=change.id, secrets=secrets)


def _step(
    library: OperationLibrary,
    stage: str,
    number: int,
    step: StepSpec,
    params: Mapping[str, Any],
    target: Target,
    change_id: int,
    hidden: list[str],
) -> StepPreview:
    blank = StepPreview(stage, target.hostname, number, step.operation, "", "", "", "")
    try:
        op, values = step_operation(
            library,
            step.operation,
            step.version,
            step.params,
            index=number,
            params=params,
            target=target,
            change_id=change_id,
        )
    except SpecError as exc:
        return _masked(replace(blank, error=_issues(exc), invalid=True), hidden)
    try:
        runs, stdin, as_user = _call(op, values, target, change_id, params)
    except SpecError as exc:  # e.g. no `by_label` case for this host: it fails there alone
        return _masked(replace(blank, error=_issues(exc)), hidden)
    except StepRefused as exc:  # the server would refuse it on every host: submission does
        return _masked(replace(blank, error=f"refused: {exc}", invalid=True), hidden)
    own = [str(values[k]) for k, spec in op.params.items() if spec.secret and values.get(k)]
    return _masked(
        StepPreview(
            stage, target.hostname, number, op.name, op.risk, runs, stdin, "", False, as_user
        ),
        hidden + own,
    )


def _call(
    op: OperationSpec,
    values: Mapping[str, Any],
    target: Target,
    change_id: int,
    params: Mapping[str, Any],
) -> tuple[str, str, str]:
    """What runs, what goes on its stdin, and the user it runs as through sudo (a command on
    the host only: an action runs on the server)."""
    context = phase_context(op, values, target, change_id=change_id, params=params)
    call = op.run.resolve(target.labels)
    if isinstance(call, str):
        stdin = render(op.stdin, context, shell=False) if op.stdin else ""
        return render(call, context), stdin, target.become_user
    shown = {k: render_value(v, context) for k, v in call.params.items()}
    if why := refusal(call.action, shown):
        raise StepRefused(why)
    return f"action {call.action} {json.dumps(shown, default=str, sort_keys=True)}", "", ""


def _issues(exc: SpecError) -> str:
    return "; ".join(f"{i.path}: {i.message}" for i in exc.issues)


def _masked(step: StepPreview, hidden: list[str]) -> StepPreview:
    """The step with every secret value that appears in its texts replaced by the mask."""
    return replace(
        step,
        runs=mask_secrets(step.runs, hidden),
        stdin=mask_secrets(step.stdin, hidden),
        error=mask_secrets(step.error, hidden),
    )
