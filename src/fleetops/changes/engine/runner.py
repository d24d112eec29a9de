"""The engine loop: one asyncio task per active change, each advancing it batch by batch.

Every decision is made from the database in a short write transaction (so several workers, or a
restart, see the same truth); hosts then run concurrently, journaling each step.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleetops.audit.service import AuditContext
from fleetops.changes.actions import ActionHandler
from fleetops.changes.engine import journal
from fleetops.changes.engine.guardrails import Budget, release, try_lease
from fleetops.changes.engine.hostrun import HostJob, HostRunner
from fleetops.changes.engine.journal import Journal
from fleetops.changes.enums import TERMINAL, ChangeState, HostRunState
from fleetops.changes.executor import Executor, Target
from fleetops.changes.operations import OperationLibrary
from fleetops.changes.states import transition
from fleetops.changes.targets import load_target
from fleetops.changes.workflows import StageSpec, WorkflowSpec, failure_threshold, parse_workflow
from fleetops.db import Leadership, lock, session_scope
from fleetops.models import ChangeRequest, HostRun, Workflow, utcnow

log = logging.getLogger(__name__)
S = ChangeState
H = HostRunState
ENGINE = AuditContext(actor="engine")
ACTIVE = (S.APPROVED, S.SCHEDULED, S.RUNNING, S.ABORTING)


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class RunBatch:
    jobs: list[HostJob]
    concurrency: int


@dataclass(frozen=True)
class RollBack:
    jobs: list[tuple[HostJob, int]]  # job, index of the last step that may have acted


Next = Wait | RunBatch | RollBack | None


class Engine:
    """Drives approved changes to completion; safe to stop and start at any moment."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        library: OperationLibrary,
        executor_for: Callable[[Target], Executor],
        budget: Budget,
        tick: float = 0.5,
        read_sessions: sessionmaker[Session] | None = None,
        served: Mapping[str, ActionHandler] | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        """`leadership` is the server's (shared with its other leader-only work); without it the
        engine runs its own election."""
        self.sessions = sessions
        self.leadership = leadership
        self.read_sessions = read_sessions or sessions
        self.budget = budget
        self.tick = tick
        self.runner = HostRunner(
            Journal(sessions, self.read_sessions), library, executor_for, served
        )
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._specs: dict[int, WorkflowSpec] = {}
        self.leading = False  # True once this engine drives changes (PostgreSQL: the leader)

    async def run_forever(self) -> None:
        """Recover, then keep every active change moving.

        Only the leader drives changes (on PostgreSQL the others wait on standby and take over,
        recovering in-flight steps, when it dies). Database work runs in threads: waiting for a
        lock must never stall the event loop, which the API shares.
        """
        own = self.leadership is None
        leadership = self.leadership or Leadership(
            self.sessions.kw["bind"], retry=max(self.tick, 2.0)
        )
        await leadership.wait()
        self.leading = True
        try:
            await asyncio.to_thread(self.recover)
            await self._loop()
        finally:
            if own:
                await leadership.stop()

    async def _loop(self) -> None:
        while True:
            try:
                for change_id in await asyncio.to_thread(self._active):
                    if change_id not in self.tasks:
                        self.tasks[change_id] = asyncio.create_task(self._drive(change_id))
            except Exception:  # a database hiccup: try again next tick
                log.exception("engine poll failed")
            await asyncio.sleep(self.tick)

    def _active(self) -> list[int]:
        with self.read_sessions() as s:
            states = [x.value for x in ACTIVE]
            # Ad-hoc commands run from the caller's side; the engine drives workflows.
            return list(
                s.scalars(
                    select(ChangeRequest.id).where(
                        ChangeRequest.state.in_(states), ChangeRequest.kind == "workflow"
                    )
                )
            )

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()

    def recover(self) -> None:
        """Settle what a crash left in flight: the check-first loop re-resolves each step."""

        def rerunnable(name: str) -> bool:
            op = self.runner.library.get(name)
            return op is not None and (op.check is not None or op.idempotent)

        with session_scope(self.sessions) as s:
            journal.settle_interrupted(s, rerunnable)

    async def _drive(self, change_id: int) -> None:
        try:
            while True:
                step = await asyncio.to_thread(self._next, change_id)
                if step is None:
                    return
                if isinstance(step, Wait):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, RunBatch):
                    await self._run_batch(change_id, step)
                else:
                    await self._roll_back(change_id, step)
        except asyncio.CancelledError:
            raise
        except Exception:  # one broken change must not stop the others
            log.exception("change %s: engine error", change_id)
            await asyncio.sleep(self.tick * 10)
        finally:
            self.tasks.pop(change_id, None)

    # --- deciding ---------------------------------------------------------------------------

    def _next(self, change_id: int) -> Next:
        with session_scope(self.sessions) as s:
            lock(s, "engine-leases")
            change = s.get(ChangeRequest, change_id)
            if change is None:
                return None
            return self._decide(s, change, utcnow())

    def _decide(self, s: Session, change: ChangeRequest, now: datetime) -> Next:
        state = ChangeState(change.state)
        if state in TERMINAL or state == S.PAUSED:
            if state in TERMINAL:
                release(s, change)
            return None
        if state in (S.APPROVED, S.SCHEDULED):
            if change.window_start and now < change.window_start:
                if state == S.APPROVED:
                    transition(
                        s,
                        change,
                        S.SCHEDULED,
                        ctx=ENGINE,
                        reason=f"scheduled for {change.window_start:%Y-%m-%d %H:%M} UTC",
                    )
                return Wait(min(5.0, (change.window_start - now).total_seconds()))
            transition(s, change, S.RUNNING, ctx=ENGINE, reason="started")
        if state == S.ABORTING:
            return self._rollback_plan(s, change)
        if change.window_end and now > change.window_end:
            transition(s, change, S.PAUSED, ctx=ENGINE, reason="its maintenance window ended")
            return None
        return self._advance(s, change, now)

    def spec(self, s: Session, change: ChangeRequest) -> WorkflowSpec:
        key = change.workflow_id
        assert key is not None  # only workflow changes are driven (see _active)
        if key not in self._specs:
            row = s.get(Workflow, key)
            assert row is not None
            self._specs[key] = parse_workflow(row.source)
        return self._specs[key]

    def _advance(self, s: Session, change: ChangeRequest, now: datetime) -> Next:
        spec = self.spec(s, change)
        if change.stage_index >= len(spec.stages):
            self._finish(s, change)
            return None
        stage = spec.stages[change.stage_index]
        runs = list(
            s.scalars(
                select(HostRun).where(
                    HostRun.change_id == change.id, HostRun.stage_index == change.stage_index
                )
            )
        )
        failed = sum(r.state == H.FAILED for r in runs)
        threshold = failure_threshold(stage.strategy.max_failures, len(runs))
        if failed - change.failures_acknowledged >= max(1, threshold):
            return self._on_threshold(s, change, stage, failed)
        open_runs = [r for r in runs if r.state in (H.PENDING, H.RUNNING)]
        if not open_runs:
            change.stage_index += 1
            if (
                failed
                and change.stage_index < len(spec.stages)
                and spec.stages[change.stage_index].when != "always"
            ):
                self._finish(s, change)
                return None
            return Wait(0)
        batch = min(r.batch_index for r in open_runs)
        batch_runs = [r for r in open_runs if r.batch_index == batch]
        if (wait := self._gate(s, change, stage, runs, batch, now)) is not None:
            return wait if isinstance(wait, Wait) else None
        hosts = [r.host_id for r in batch_runs if r.host_id is not None]
        why = try_lease(s, change, hosts, self.budget, now)
        if why:
            change.status_reason = f"waiting: {why}"[:500]
            return Wait(max(self.tick, 1.0))
        batches = max(r.batch_index for r in runs) + 1
        change.status_reason = f"stage {stage.name}: batch {batch + 1}/{batches}"
        host_stage = spec.host_stage(change.stage_index)  # with its verify stages' checks
        jobs = [self._job(s, change, host_stage, r) for r in batch_runs]
        return RunBatch(jobs, stage.strategy.concurrency or len(jobs))

    def _gate(
        self,
        s: Session,
        change: ChangeRequest,
        stage: StageSpec,
        runs: list[HostRun],
        batch: int,
        now: datetime,
    ) -> Wait | bool | None:
        """Wait (or pause) before a batch that has not started; None when it may start."""
        started = any(r.batch_index == batch and r.started_at for r in runs)
        pause = stage.strategy.pause_between
        if batch == 0 or started or not pause:
            return None
        key = f"{change.stage_index}:{batch}"
        if pause == "manual":
            if change.gate == f"open:{key}":
                return None
            change.gate = f"pending:{key}"
            transition(
                s,
                change,
                S.PAUSED,
                ctx=ENGINE,
                reason=f"manual gate: resume to start batch {batch + 1} of stage {stage.name}",
            )
            return True
        previous = [r.finished_at for r in runs if r.batch_index == batch - 1 and r.finished_at]
        ready = max(previous, default=now) + timedelta(seconds=float(pause))
        if now < ready:
            change.status_reason = f"pausing {pause:.0f} s between batches"
            return Wait(min(self.tick * 4, (ready - now).total_seconds()))
        return None

    def _on_threshold(
        self, s: Session, change: ChangeRequest, stage: StageSpec, failed: int
    ) -> Next:
        reason = (
            f"{failed} failed host(s) in stage {stage.name} reached max_failures "
            f"{stage.strategy.max_failures}"
        )
        if stage.strategy.on_failure == "abort":
            transition(
                s,
                change,
                S.ABORTING if stage.strategy.on_abort == "rollback" else S.ABORTED,
                ctx=ENGINE,
                reason=reason,
            )
            return Wait(0)
        transition(s, change, S.PAUSED, ctx=ENGINE, reason=f"{reason}; resume, retry or abort")
        return None

    def _finish(self, s: Session, change: ChangeRequest) -> None:
        failed = s.scalars(
            select(HostRun.hostname).where(
                HostRun.change_id == change.id, HostRun.state == H.FAILED
            )
        ).all()
        if failed:
            transition(
                s,
                change,
                S.FAILED,
                ctx=ENGINE,
                reason=f"{len(failed)} host(s) failed: {', '.join(sorted(failed)[:10])}",
            )
        else:
            transition(s, change, S.SUCCEEDED, ctx=ENGINE, reason="every host succeeded")
        release(s, change)

    def _job(self, s: Session, change: ChangeRequest, stage: StageSpec, run: HostRun) -> HostJob:
        secrets = tuple(
            sorted(
                {
                    str(change.params[name])
                    for name, shown in change.params_redacted.items()
                    if shown == "***" and change.params.get(name) not in (None, "")
                },
                key=len,
                reverse=True,  # a longer secret first, so no shorter one splits it
            )
        )
        target = host_target(s, run.host_id)
        return HostJob(change.id, run.id, stage, change.params, target, secrets)

    # --- acting -----------------------------------------------------------------------------

    def _state(self, change_id: int) -> str | None:
        with self.read_sessions() as s:
            return s.scalar(select(ChangeRequest.state).where(ChangeRequest.id == change_id))

    async def _run_batch(self, change_id: int, batch: RunBatch) -> None:
        limit = asyncio.Semaphore(max(1, batch.concurrency))
        watch = _StateWatch(lambda: asyncio.to_thread(self._state, change_id), self.tick)

        async def one(job: HostJob) -> tuple[HostJob, HostRunState]:
            async with limit:
                if not await watch.running():
                    return job, H.PENDING
                return job, await self.runner.run(job, watch.running)

        results = await asyncio.gather(*(one(job) for job in batch.jobs))
        done = [job.host_run_id for job, state in results if state == H.SUCCEEDED]
        if done:
            await asyncio.to_thread(self._release_done, change_id, done)

    def _release_done(self, change_id: int, host_run_ids: list[int]) -> None:
        """Succeeded hosts go back to the pool; failed ones stay out until resolved."""
        with session_scope(self.sessions) as s:
            change = s.get(ChangeRequest, change_id)
            hosts = s.scalars(select(HostRun.host_id).where(HostRun.id.in_(host_run_ids))).all()
            if change is not None:
                release(s, change, [h for h in hosts if h is not None])

    def _rollback_plan(self, s: Session, change: ChangeRequest) -> Next:
        spec = self.spec(s, change)
        runs = s.scalars(
            select(HostRun).where(
                HostRun.change_id == change.id,
                HostRun.state.in_([H.SUCCEEDED, H.FAILED, H.PENDING, H.RUNNING]),
            )
        ).all()
        todo = [r for r in runs if r.state in (H.SUCCEEDED, H.FAILED) or r.step_index > 0]
        if not todo:
            journal.cancel(runs)
            broken = s.scalar(
                select(HostRun.id)
                .where(HostRun.change_id == change.id, HostRun.state == H.ROLLBACK_FAILED)
                .limit(1)
            )
            target = S.ABORTED if broken else S.ROLLED_BACK
            transition(
                s,
                change,
                target,
                ctx=ENGINE,
                reason="rollback failed on some hosts" if broken else "rolled back",
            )
            release(s, change)
            return None
        jobs = []
        for r in todo:
            stage = spec.host_stage(r.stage_index)
            last = r.step_index if r.state == H.FAILED else r.step_index - 1
            jobs.append((self._job(s, change, stage, r), last))
        change.status_reason = f"rolling back {len(jobs)} host(s)"
        return RollBack(jobs)

    async def _roll_back(self, change_id: int, plan: RollBack) -> None:
        async def one(job: HostJob, last: int) -> None:
            error = await self.runner.rollback(job, last)
            await asyncio.to_thread(
                self.runner.journal.host,
                job.host_run_id,
                state=H.ROLLBACK_FAILED if error else H.ROLLED_BACK,
                error=error[:2000],
            )

        await asyncio.gather(*(one(job, last) for job, last in plan.jobs))


class _StateWatch:
    """The change's state, read at most once per tick however many hosts ask.

    Every host checks before each step whether the change is still running (a pause or cancel
    stops new steps); sharing one read keeps that from costing a query per host-step.
    """

    def __init__(self, read: Callable[[], Awaitable[str | None]], max_age: float) -> None:
        self.read = read
        self.max_age = max_age
        self.state: str | None = None
        self.read_at = -math.inf

    async def running(self) -> bool:
        if time.monotonic() - self.read_at > self.max_age:
            self.state = await self.read()
            self.read_at = time.monotonic()
        return self.state == S.RUNNING


def host_target(s: Session, host_id: int | None) -> Target:
    """A host as its executor sees it (`changes.targets`)."""
    return load_target(s, host_id)
