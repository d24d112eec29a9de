"""Ship the simulated fleet's log lines to a fleetops server in real time, over HTTP.

The demo's lines take the same path as any shipper's (`POST /api/v1/logs` with an ingest token),
so what a visitor sees on the diagnosis pages is the real pipeline at work."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx

from fleetops.sim.faults import Fault
from fleetops.sim.workload import Workload
from fleetops.sim.workload_model import SimLine

log = logging.getLogger(__name__)


def ndjson(batch: list[SimLine]) -> bytes:
    """Lines in the JSON-lines shape Vector's HTTP sink sends."""
    return "\n".join(
        json.dumps(
            {
                "message": line.message,
                "host": line.host,
                "file": line.file,
                "timestamp": line.ts.isoformat(),
                **line.labels,
            },
            separators=(",", ":"),
        )
        for line in batch
    ).encode()


class LiveFeed:
    """Advance the workload with the wall clock and post each second's lines."""

    def __init__(self, workload: Workload, url: str, token: str, *, step: float = 1.0) -> None:
        self.workload = workload
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        self.step = step
        self.sent = 0

    def inject(self, fault: Fault) -> None:
        self.workload.inject(fault)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                await asyncio.sleep(self.step)
                now = datetime.now(UTC)
                if now <= self.workload.now:
                    continue
                # After a long stall (a suspended laptop) skip ahead rather than flood.
                if now - self.workload.now > timedelta(minutes=5):
                    self.workload.advance(now - timedelta(seconds=self.step))
                batch = self.workload.advance(now)
                if batch:
                    await self._post(client, ndjson(batch))
                    self.sent += len(batch)

    async def _post(self, client: httpx.AsyncClient, body: bytes) -> None:
        delay = 0.5
        while True:
            try:
                response = await client.post(self.url, content=body, headers=self.headers)
            except httpx.TransportError as exc:  # the server is starting or restarting
                log.debug("feed: %s; retrying", exc)
            else:
                if response.status_code == 200:
                    return
                if response.status_code in (401, 403, 400, 413):
                    log.error("feed refused (%s): %s", response.status_code, response.text)
                    return
                delay = float(response.headers.get("Retry-After", delay))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
