"""The demo's repair shop: works the repair queue through the public API, as a ticket system would.

It takes each new ticket, diagnoses it, sometimes waits for parts, and reports it repaired after a
while; some repairs do not fix the machine (the verification that follows then fails and the
ticket climbs the ladder). `on_outcome(host, fixed)` tells the simulated fleet whether the machine
is healthy now, so the verification change answers accordingly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

log = logging.getLogger(__name__)
LIVE = ("open", "diagnosing", "waiting_parts")


@dataclass
class ShopTimes:
    """Seconds from the ticket's first sight to each step (jittered ±50 %)."""

    diagnose: float = 20.0
    parts: float = 40.0  # extra wait when parts are needed
    repair: float = 40.0
    parts_share: float = 0.3  # tickets that wait for parts
    failure_share: float = 0.25  # repairs that do not fix the machine


@dataclass
class _Job:
    seen: float
    plan: list[tuple[float, str]] = field(default_factory=list)


class RepairShop:
    """Polls `/api/v1/repairs` every `interval` seconds and moves tickets along."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        times: ShopTimes | None = None,
        seed: int = 7,
        interval: float = 5.0,
        on_outcome: Callable[[str, bool], None] = lambda host, fixed: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}
        self.times = times or ShopTimes()
        self.rng = random.Random(seed)
        self.interval = interval
        self.on_outcome = on_outcome
        self.clock = clock
        self.jobs: dict[int, _Job] = {}

    def _plan(self, now: float) -> _Job:
        t = self.times

        def jitter(seconds: float) -> float:
            return seconds * self.rng.uniform(0.5, 1.5)

        at = now + jitter(t.diagnose)
        plan = [(at, "diagnosing")]
        if self.rng.random() < t.parts_share:
            at += jitter(t.parts)
            plan.append((at, "waiting_parts"))
        plan.append((at + jitter(t.repair), "repaired"))
        return _Job(seen=now, plan=plan)

    async def run_once(self, client: httpx.AsyncClient) -> list[tuple[int, str]]:
        """One look at the queue; the (ticket, status) updates it made."""
        params = httpx.QueryParams({"status": list(LIVE), "limit": 1000})
        page = await client.get(f"{self.url}/api/v1/repairs", params=params, headers=self.headers)
        page.raise_for_status()
        now, done = self.clock(), []
        for ticket in page.json()["items"]:
            job = self.jobs.setdefault(ticket["id"], self._plan(now))
            due = [status for at, status in job.plan if at <= now]
            if not due or due[-1] == ticket["status"]:
                continue
            status = due[-1]
            body: dict[str, str] = {"status": status, "note": f"repair shop: {status}"}
            if status == "repaired":
                fixed = self.rng.random() >= self.times.failure_share
                self.on_outcome(ticket["host"], fixed)
                body["note"] = f"repair shop: {ticket['action']} done" + (
                    "" if fixed else " (the fault was elsewhere)"
                )
            answer = await client.post(
                f"{self.url}/api/v1/repairs/{ticket['id']}/status", json=body, headers=self.headers
            )
            if answer.status_code == 200:
                done.append((ticket["id"], status))
            else:
                log.info("repair shop: ticket %s: %s", ticket["id"], answer.text[:200])
        return done

    async def run(self) -> None:
        """Rounds until cancelled; the server may not be up yet, or may restart."""
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                try:
                    await self.run_once(client)
                except httpx.HTTPError as exc:
                    log.debug("repair shop: %s", exc)
                await asyncio.sleep(self.interval)
