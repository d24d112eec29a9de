"""Run one host's steps durably: check first, run with retries, verify; and roll back.

Check-first is what makes crash recovery simple: after a restart a host resumes at its first
unfinished step, and that step's `check` tells whether the interrupted run already took effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fleetops.changes.actions import ActionHandler, run_action
from fleetops.changes.engine.journal import Journal
from fleetops.changes.enums import HostRunState
from fleetops.changes.executor import Executor, Result, StepRefused, Target
from fleetops.changes.operations import (
    Invocation,
    OperationLibrary,
    OperationSpec,
    validate_params,
)
from fleetops.changes.specs import Issue, SpecError
from fleetops.changes.templating import HostFacts, operation_context, render, render_value
from fleetops.changes.workflows import StageSpec

H = HostRunState


@dataclass(frozen=True)
class HostJob:
    change_id: int
    host_run_id: int
    stage: StageSpec
    params: Mapping[str, Any]  # the change's workflow parameters (secrets included)
    target: Target
    secrets: tuple[str, ...] = ()  # secret values: masked in everything a step run records


class HostRunner:
    def __init__(
        self,
        journal: Journal,
        library: OperationLibrary,
        executor_for: Callable[[Target], Executor],
        served: Mapping[str, ActionHandler] | None = None,
    ) -> None:
        self.journal = journal
        self.library = library
        self.executor_for = executor_for
        self.served = dict(served or {})

    async def _host(self, host_run_id: int, **fields: Any) -> None:
        # Database work runs in a thread: a lock wait must never stall the event loop.
        await asyncio.to_thread(self.journal.host, host_run_id, **fields)

    async def run(self, job: HostJob, keep_going: Callable[[], Awaitable[bool]]) -> HostRunState:
        """Run the host's remaining steps; return its state (pending if stopped by a pause)."""
        state, first = await asyncio.to_thread(self.journal.host_state, job.host_run_id)
        if state in (H.SUCCEEDED, H.FAILED, H.CANCELLED):
            return state
        await self._host(job.host_run_id, state=H.RUNNING, started_at=self.journal.now())
        for index in range(first, len(job.stage.steps)):
            if not await keep_going():
                await self._host(job.host_run_id, state=H.PENDING)
                return H.PENDING
            error = await self._step(job, index)
            if error:
                await self._host(
                    job.host_run_id,
                    state=H.FAILED,
                    error=error[:2000],
                    finished_at=self.journal.now(),
                )
                return H.FAILED
            await self._host(job.host_run_id, step_index=index + 1)
        await self._host(job.host_run_id, state=H.SUCCEEDED, finished_at=self.journal.now())
        return H.SUCCEEDED

    def operation(self, job: HostJob, index: int) -> tuple[OperationSpec, dict[str, Any]]:
        """The step's operation and its parameter values rendered for this host."""
        step = job.stage.steps[index]
        return step_operation(
            self.library,
            step.operation,
            step.version,
            step.params,
            index=index,
            params=job.params,
            target=job.target,
            change_id=job.change_id,
        )

    async def _step(self, job: HostJob, index: int) -> str:
        try:
            op, values = self.operation(job, index)
        except SpecError as exc:  # a parameter that renders invalid fails the host, clearly
            return str(exc)
        context = self._context(job, op, values)
        if op.check is not None:
            checked = await self._phase(job, index, op, "check", op.check, context, values)
            if checked.ok:
                return ""  # the desired state is already there
        result = Result(exit_code=None, error="not run")
        for attempt in range(1, op.retries.count + 2):
            result = await self._phase(job, index, op, "run", op.run, context, values, attempt)
            if result.ok or attempt > op.retries.count:
                break
            await asyncio.sleep(op.retries.delay(attempt))
        if not result.ok:
            return _describe(op.name, "run", result)
        if op.verify is not None:
            verified = await self._phase(job, index, op, "verify", op.verify, context, values)
            if not verified.ok:
                return _describe(op.name, "verify", verified)
        return ""

    async def rollback(self, job: HostJob, upto: int) -> str:
        """Undo steps `upto`..0 that declare a rollback, newest first; return the first error."""
        for index in range(min(upto, len(job.stage.steps) - 1), -1, -1):
            try:
                op, values = self.operation(job, index)
            except SpecError as exc:
                return str(exc)
            if op.rollback is None:
                continue
            result = await self._phase(
                job, index, op, "rollback", op.rollback, self._context(job, op, values), values
            )
            if not result.ok:
                return _describe(op.name, "rollback", result)
        return ""

    def _context(
        self, job: HostJob, op: OperationSpec, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        return phase_context(op, values, job.target, change_id=job.change_id, params=job.params)

    async def _phase(
        self,
        job: HostJob,
        index: int,
        op: OperationSpec,
        phase: str,
        spec: Invocation,
        context: Mapping[str, Any],
        values: Mapping[str, Any],
        attempt: int = 1,
    ) -> Result:
        step_run = await asyncio.to_thread(
            self.journal.start_step, job.host_run_id, index, op.name, phase, attempt
        )
        refused = ""
        try:
            result = await self._invoke(job.target, op, spec, context)
        except StepRefused as exc:
            refused = mask_secrets(str(exc), job.secrets)
            result = Result(exit_code=None, error=f"refused: {refused}")
        except Exception as exc:  # a bad template or action must fail the host, not the engine
            result = Result(exit_code=None, error=f"{type(exc).__name__}: {exc}")
        result = masked(result, job.secrets)
        await asyncio.to_thread(self.journal.finish_step, step_run, result, refused=refused)
        return result

    async def _invoke(
        self, target: Target, op: OperationSpec, spec: Invocation, context: Mapping[str, Any]
    ) -> Result:
        executor = self.executor_for(target)
        call = spec.resolve(target.labels)
        if isinstance(call, str):
            stdin = render(op.stdin, context, shell=False) if op.stdin else None
            return await executor.run(
                target, render(call, context), timeout=op.timeout, stdin=stdin
            )
        params = {k: render_value(v, context) for k, v in call.params.items()}
        return await run_action(
            call.action, executor, target, params, timeout=op.timeout, served=self.served
        )


def masked(result: Result, secrets: tuple[str, ...]) -> Result:
    """The result with every secret value in its output and error replaced by ***: a command
    that echoes its stdin, or a tool that quotes its input in an error, must not leak it."""
    if not secrets:
        return result
    return replace(
        result,
        stdout=mask_secrets(result.stdout, secrets),
        stderr=mask_secrets(result.stderr, secrets),
        error=mask_secrets(result.error, secrets),
    )


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret value replaced by ***, longest first (so no shorter secret
    splits a longer one)."""
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def step_operation(
    library: OperationLibrary,
    name: str,
    version: int | None,
    given: Mapping[str, Any],
    *,
    index: int,
    params: Mapping[str, Any],
    target: Target,
    change_id: int,
) -> tuple[OperationSpec, dict[str, Any]]:
    """A step's operation and its parameter values rendered for one host and validated; the
    engine runs exactly this, and a change's submission and preview render the same."""
    op = library.get(name, version)
    if op is None:
        message = f"operation {name!r} is no longer in the library"
        raise SpecError([Issue(f"steps[{index}].operation", message)])
    context = {"params": dict(params), "host": _host_facts(target), "change": {"id": change_id}}
    rendered = {k: render_value(v, context) for k, v in given.items()}
    return op, validate_params(op.params, rendered, path=f"steps[{index}].params")


def phase_context(
    op: OperationSpec,
    values: Mapping[str, Any],
    target: Target,
    *,
    change_id: int,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """What an operation's command templates see on one host."""
    facts = HostFacts(
        hostname=target.hostname,
        address=target.connect_to,
        rack=target.labels.get("rack"),
        cluster=target.labels.get("cluster"),
        labels=target.labels,
    )
    context = operation_context(values, host=facts, change_id=change_id, timeout=op.timeout)
    return {**context, "params": dict(params)}


def _host_facts(target: Target) -> dict[str, Any]:
    return {
        "hostname": target.hostname,
        "address": target.connect_to,
        "rack": target.labels.get("rack"),
        "cluster": target.labels.get("cluster"),
        "labels": dict(target.labels),
    }


def _describe(operation: str, phase: str, result: Result) -> str:
    if result.error:
        return f"{operation} {phase}: {result.error}"
    tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
    return f"{operation} {phase}: exit {result.exit_code}: {tail[0][:300]}"
