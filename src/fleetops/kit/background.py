"""One start/stop shape for the server's background work.

Every long-running part of the server (the change engine, the log services, the health policy,
webhook delivery, the refusal counter, the demo's feed) is a `BackgroundService`. The server
starts them in order and stops them in reverse, so what a later one needs is up first and down
last; a part that fails to start stops those already started. A part that is just a loop is a
`Loop` around its coroutine; a part that must run once per database, not once per server, is
wrapped in `LeaderOnly`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)


class BackgroundService(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Loop:
    """`run()` as a task for the server's lifetime; cancelled at stop, then `on_stop` runs."""

    def __init__(
        self,
        name: str,
        run: Callable[[], Coroutine[Any, Any, None]],
        *,
        on_stop: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self.name = name
        self._run = run
        self._on_stop = on_stop
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._on_stop is not None and inspect.isawaitable(done := self._on_stop()):
            await done


class Leader(Protocol):
    async def wait(self) -> None:
        """Return once this process leads."""


class LeaderOnly:
    """`service` runs only on the elected leader: `start()` returns at once, and the service
    starts when this process leads (at once with SQLite; on PostgreSQL when no other server
    does). Singleton work (policies, timers, deliveries) must not run twice at the same time."""

    def __init__(self, service: BackgroundService, leader: Leader) -> None:
        self.service = service
        self.leader = leader
        self.name = service.name
        self.running = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._lead(), name=f"{self.name}-awaiting-lead")

    async def _lead(self) -> None:
        await self.leader.wait()
        try:
            await self.service.start()
        except Exception:
            log.exception("%s failed to start on the leader", self.name)
            return
        self.running = True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.running:
            self.running = False
            await self.service.stop()


async def start_all(services: Sequence[BackgroundService]) -> list[BackgroundService]:
    """Start `services` in order; if one fails, stop those started and raise."""
    started: list[BackgroundService] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
    except BaseException:
        await stop_all(started)
        raise
    return started


async def stop_all(services: Sequence[BackgroundService]) -> None:
    """Stop `services` in reverse order."""
    for service in reversed(services):
        await service.stop()
