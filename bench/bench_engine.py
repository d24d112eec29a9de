"""Engine overhead: a no-op rolling change over a 10,000-host simulated fleet.

The operation is `true` on the simulated executor with no latency, so the executor does no work
and a change's run time is what the engine itself costs: deciding batches, leasing hosts under the
guardrails and journaling every host and step durably. Baseline: the same executor calls, run with
`asyncio.gather` in batches of the same size and concurrency, with no persistence at all; the ratio
is the price of durability. Run:
`.venv/bin/python bench/bench_engine.py [--hosts N] [--spread none,rack] [--postgres URL]`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from fleetops.audit.service import AuditContext
from fleetops.auth.roles import Role
from fleetops.changes import service
from fleetops.changes.approvals import ApprovalPolicy
from fleetops.changes.engine.guardrails import Budget
from fleetops.changes.engine.runner import Engine
from fleetops.changes.executor import Target
from fleetops.changes.operations import OperationLibrary, load_library
from fleetops.db import make_engine, make_session_factory, session_scope, upgrade
from fleetops.inventory.apply import apply_document
from fleetops.models import ChangeRequest, HostRun, StepRun
from fleetops.sim.executor import SimulatedExecutor
from fleetops.sim.fleet import generate

BATCH_PERCENT = 10
CONCURRENCY = 500
NOOP = """
name: noop
version: 1
description: Do nothing; what remains of a change's run time is the engine's own cost.
risk: low
idempotent: true
timeout: 60
run: "true"
"""
WORKFLOW = f"""
name: noop-{{spread}}
version: 1
description: One no-op step on every host, {BATCH_PERCENT}% at a time.
stages:
  - name: all
    steps:
      - operation: noop
    strategy:
      batch: {BATCH_PERCENT}%
      concurrency: {CONCURRENCY}
      spread_by: {{spread}}
"""
progress_console = Console(stderr=True)


@dataclass(frozen=True)
class Figures:
    submit_s: float
    run_s: float
    host_steps: int


def build_fleet(url: str, hosts: int) -> float:
    """Migrate a fresh database and load the generated fleet; return the seconds it took."""
    engine = make_engine(url)
    start = time.perf_counter()
    upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        doc = generate(hosts=hosts, racks=max(1, hosts // 25))
        apply_document(session, AuditContext(actor="bench"), doc)
    engine.dispose()
    return time.perf_counter() - start


def submit(
    sessions: sessionmaker[Session], library: OperationLibrary, spread: str
) -> tuple[int, float]:
    """Register the workflow, submit a change on every host and approve it as two operators.

    Returns the change and the seconds its submission took (resolving and planning, committed).
    """
    with session_scope(sessions) as s:
        service.register_workflow(
            s, AuditContext("bench"), source=WORKFLOW.format(spread=spread), library=library
        )
    start = time.perf_counter()
    with session_scope(sessions) as s:
        change = service.submit(
            s,
            AuditContext("bench"),
            service.Submission(workflow=f"noop-{spread}", title="bench", selector="all", params={}),
            library=library,
            policy=ApprovalPolicy(),
        )
        change_id = change.id
    submit_s = time.perf_counter() - start
    with session_scope(sessions) as s:
        pending = s.get(ChangeRequest, change_id)
        assert pending is not None
        for operator in ("op-a", "op-b"):  # the whole fleet is high risk: four eyes
            service.vote(s, AuditContext(operator), pending, role=Role.OPERATOR, approve=True)
        assert pending.state == "approved", pending.state
    return change_id, submit_s


async def drive(
    sessions: sessionmaker[Session],
    reads: sessionmaker[Session],
    library: OperationLibrary,
    change_id: int,
    hosts: int,
) -> SimulatedExecutor:
    """Run the engine until the change succeeds, showing how many hosts are done."""
    executor = SimulatedExecutor(latency=0.0)
    engine = Engine(
        sessions=sessions,
        library=library,
        executor_for=lambda _target: executor,
        budget=Budget(rack=1.0, cluster=1.0, max_hosts=hosts),
        read_sessions=reads,
    )
    task = asyncio.create_task(engine.run_forever())
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console,
        transient=True,
    ) as bar:
        shown = bar.add_task("hosts done", total=hosts)
        polls = 0
        while (state := await asyncio.to_thread(_state, reads, change_id)) != "succeeded":
            if state not in ("approved", "running"):
                raise SystemExit(f"change {change_id} ended {state}")
            polls += 1
            if polls % 20 == 0:
                bar.update(shown, completed=await asyncio.to_thread(_done, reads, change_id))
            await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await engine.stop()
    return executor


def _state(reads: sessionmaker[Session], change_id: int) -> str | None:
    with reads() as s:
        return s.scalar(select(ChangeRequest.state).where(ChangeRequest.id == change_id))


def _done(reads: sessionmaker[Session], change_id: int) -> int:
    with reads() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(HostRun)
                .where(HostRun.change_id == change_id, HostRun.state == "succeeded")
            )
            or 0
        )


def _steps(reads: sessionmaker[Session], change_id: int) -> int:
    with reads() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(StepRun)
                .join(HostRun, HostRun.id == StepRun.host_run_id)
                .where(HostRun.change_id == change_id, StepRun.state == "succeeded")
            )
            or 0
        )


def engine_run(url: str, library: OperationLibrary, hosts: int, spread: str) -> Figures:
    """Submit and run one change; check every host ran its step exactly once."""
    db = make_engine(url)
    sessions, reads = make_session_factory(db), make_session_factory(db, write=False)
    change_id, submit_s = submit(sessions, library, spread)
    start = time.perf_counter()
    executor = asyncio.run(drive(sessions, reads, library, change_id, hosts))
    run_s = time.perf_counter() - start
    calls = sum(h.received for h in executor.hosts.values())
    done, steps = _done(reads, change_id), _steps(reads, change_id)
    db.dispose()
    if not calls == done == steps == hosts:
        raise SystemExit(f"{calls} executor calls, {done} hosts and {steps} steps for {hosts}")
    return Figures(submit_s, run_s, steps)


async def bare(hosts: int) -> float:
    """The baseline: the same executor calls in batches of the same size, nothing persisted.

    The best of three runs: the floor, not whatever else the machine was doing.
    """
    executor = SimulatedExecutor(latency=0.0)
    targets = [Target(hostname=f"h{i:05d}") for i in range(hosts)]
    size = max(1, -(-hosts * BATCH_PERCENT // 100))
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(target: Target) -> bool:
        async with limit:
            return (await executor.run(target, "true", timeout=60)).ok

    runs = []
    for _ in range(3):
        start = time.perf_counter()
        for first in range(0, hosts, size):
            results = await asyncio.gather(*(one(t) for t in targets[first : first + size]))
            assert all(results)
        runs.append(time.perf_counter() - start)
    return min(runs)


def report(name: str, figures: Figures, baseline_s: float) -> None:
    per_step = figures.run_s / figures.host_steps * 1000
    base_per_step = baseline_s / figures.host_steps * 1000
    print(
        f"{name:<22} {figures.submit_s:>9.2f} {figures.run_s:>8.2f} "
        f"{figures.host_steps / figures.run_s:>13,.0f} {per_step:>14.3f} "
        f"{baseline_s:>12.3f} {base_per_step:>16.4f} {per_step / base_per_step:>8,.0f}x"
    )


def run(url: str, hosts: int, spreads: list[str]) -> None:
    with tempfile.TemporaryDirectory() as ops:
        (Path(ops) / "noop.yaml").write_text(NOOP)
        library = load_library(Path(ops))
    built = build_fleet(url, hosts)
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    print(f"\n{dialect}, {hosts} hosts, batch {BATCH_PERCENT}%, concurrency {CONCURRENCY}")
    after = "; the changes run on it one after the other" if len(spreads) > 1 else ""
    print(f"(fleet built in {built:.1f} s{after})")
    print(
        f"{'change':<22} {'submit s':>9} {'run s':>8} {'host-steps/s':>13} {'ms/host-step':>14} "
        f"{'baseline s':>12} {'baseline ms/step':>16} {'ratio':>9}"
    )
    for spread in spreads:
        figures = engine_run(url, library, hosts, spread)
        report(f"noop, spread_by {spread}", figures, asyncio.run(bare(hosts)))


@contextmanager
def postgres_schema(base_url: str, schema: str) -> Iterator[str | None]:
    """A fresh schema (dropped afterwards), or None when PostgreSQL is not reachable."""
    admin = make_engine(base_url)
    drop = f"DROP SCHEMA IF EXISTS {schema} CASCADE"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"{drop}; CREATE SCHEMA {schema}"))
    except Exception as exc:  # PostgreSQL is optional for a benchmark run
        print(f"\npostgresql skipped: {exc}")
        yield None
        return
    try:
        yield f"{base_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(drop))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument(
        "--spread", default="none", help="spread_by values, one change each: none,rack"
    )
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    spreads = [s.strip() for s in args.spread.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.hosts, spreads)
    with postgres_schema(args.postgres, "fleetops_bench_engine") as url:
        if url is not None:
            run(url, args.hosts, spreads)


if __name__ == "__main__":
    main()
