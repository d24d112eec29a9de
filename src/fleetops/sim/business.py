"""The demo shop's business throughput: transactions per second with a shopping peak, pushed to
the server's metrics API as a site's own systems would, and a week of history behind it so that
the live screen has a normal band to compare the peak with."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.orm import Session

from fleetops.metrics import service as metrics_service
from fleetops.metrics.schemas import MetricPoint

log = logging.getLogger(__name__)

TRANSACTIONS = "shop.transactions"
LOG_LINES = "fleetops.log_lines"
FINISHED = {"jobs": "fleet.jobs_finished", "tasks": "fleet.tasks_finished"}
NORMAL_TPS = 200.0
PEAK_FACTOR = 10.0
PEAK_EVERY = timedelta(minutes=30)
PEAK_FIRST = timedelta(minutes=3)  # after the demo starts
RAMP = timedelta(minutes=3)
HOLD = timedelta(minutes=2)
HISTORY_DAYS = 7


def normal_tps(at: datetime) -> float:
    """The shop's usual rate at this time of day: busier in the evening, quiet at night."""
    hour = at.hour + at.minute / 60
    return NORMAL_TPS * (1 + 0.35 * math.sin((hour - 14) / 24 * 2 * math.pi))


def peak_factor(at: datetime, start: datetime) -> float:
    """1 outside a peak; up to PEAK_FACTOR during one (a ramp up, a hold, a ramp down)."""
    since = (at - start - PEAK_FIRST) % PEAK_EVERY if at - start >= PEAK_FIRST else None
    if since is None:
        return 1.0
    if since < RAMP:
        share = since / RAMP
    elif since < RAMP + HOLD:
        share = 1.0
    elif since < RAMP * 2 + HOLD:
        share = 1 - (since - RAMP - HOLD) / RAMP
    else:
        return 1.0
    return 1 + (PEAK_FACTOR - 1) * share


def backfill(session: Session, *, now: datetime, hours_after: float = 2, seed: int = 7) -> int:
    """A week of ordinary days (no peaks) around this time of day: what the band is made of."""
    rng = random.Random(seed)
    points = []
    for day in range(1, HISTORY_DAYS + 1):
        moment = now - timedelta(days=day, minutes=30)
        end = now - timedelta(days=day) + timedelta(hours=hours_after)
        while moment < end:
            count = normal_tps(moment) * metrics_service.WINDOW_SECONDS * rng.uniform(0.93, 1.07)
            points.append(MetricPoint(name=TRANSACTIONS, value=count, time=moment, kind="count"))
            moment += timedelta(seconds=metrics_service.WINDOW_SECONDS)
    return metrics_service.record(session, points, now=now)


class ShopFeed:
    """Push, every second, the transactions of the last second, and the log lines the simulated
    fleet shipped and the jobs and tasks it finished meanwhile."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        lines_sent: Callable[[], int],
        finished: Callable[[], dict[str, int]] = dict,
        seed: int = 7,
    ) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.lines_sent = lines_sent
        self.finished = finished
        self.rng = random.Random(seed)
        self.start = datetime.now(UTC)

    def sample(
        self, at: datetime, lines: int, done: dict[str, int] | None = None
    ) -> list[dict[str, object]]:
        tps = normal_tps(at) * peak_factor(at, self.start) * self.rng.uniform(0.95, 1.05)
        stamp = at.isoformat()
        return [
            {"name": TRANSACTIONS, "value": round(tps, 1), "kind": "count", "time": stamp},
            {"name": LOG_LINES, "value": lines, "kind": "count", "time": stamp},
            *(
                {"name": FINISHED[what], "value": n, "kind": "count", "time": stamp}
                for what, n in (done or {}).items()
            ),
        ]

    async def run(self) -> None:
        sent, finished = self.lines_sent(), dict(self.finished())
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                await asyncio.sleep(1.0)
                now_sent, now_finished = self.lines_sent(), dict(self.finished())
                done = {k: n - finished.get(k, 0) for k, n in now_finished.items()}
                body = {"points": self.sample(datetime.now(UTC), now_sent - sent, done)}
                sent, finished = now_sent, now_finished
                try:
                    answer = await client.post(self.url, json=body, headers=self.headers)
                except httpx.TransportError as exc:  # the server is starting or stopping
                    log.debug("shop feed: %s", exc)
                    continue
                if answer.status_code >= 400:
                    log.error("shop feed refused (%s): %s", answer.status_code, answer.text)
