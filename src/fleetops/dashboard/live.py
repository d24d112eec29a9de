"""The live operations screen: one publisher per server process, pushed to every open screen.

The screen's panels (changes awaiting approval, changes under way, open findings, devices out
of service) are read from the database once per tick by one task, while any screen is open,
whichever process changed them: this server, another one, the engine, the CLI's local API
server. Only panels that changed are sent, as one encoded event handed to every subscriber's
queue, so a screen costs the server a queue and a socket, not queries: fifty screens cost what
one does. A screen that falls behind (its queue full) is sent the whole state again instead of
a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from fleetops.changes import repository as changes
from fleetops.dashboard.annotations import KINDS, Window, gather
from fleetops.dashboard.render import PageUser, page
from fleetops.devices import service as devices_service
from fleetops.devices.enums import Lifecycle
from fleetops.errors import AppError
from fleetops.findings import service as findings_service
from fleetops.logs.diagnosis.repository import (
    SLOW_CELL,
    TimeRange,
    WindowLength,
    latency_series,
    link_matrix,
    link_series,
)
from fleetops.metrics import service as metrics_service

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

TICK_SECONDS = 0.25  # how stale a panel may be; an event reaches screens within this plus send
KEEPALIVE_SECONDS = 15.0
QUEUE_EVENTS = 32  # per screen; beyond it the screen is sent the whole state instead
OUT_OF_SERVICE = (Lifecycle.DRAINING, Lifecycle.ISOLATED, Lifecycle.IN_REPAIR, Lifecycle.VERIFYING)
ROLLUP_EVERY = 20  # ticks: rollups close every 10 s, so their panels are read every 5 s
HISTORY = timedelta(minutes=15)  # what a sparkline spans
HOT_SPAN = timedelta(minutes=5)  # the links ranked over this, and their sparklines
RECENT = timedelta(seconds=40)  # "slow now": the 10 s windows closed in this
HOT_MIN = 3  # transfers in RECENT for a link to be called hot: one slow transfer is no link
HOT_LINKS = 5
THROUGHPUT_METRICS = 4  # the first by name; a site names its own so that they sort first
LIVE_MARKS = 30  # the latest events of the sparklines' 15 minutes

Snapshot = dict[str, Any]


def snapshot(session: Session, *, budget_fraction: float) -> Snapshot:
    """Every panel's data, as the screen shows it."""
    found = changes.live_changes(session)
    states = devices_service.counts(session)
    serving = sum(n for s, n in states.items() if s != Lifecycle.RETIRED)
    return {
        "approvals": {"waiting": found["waiting"], "items": found["approvals"]},
        "changes": found["changes"],
        "findings": findings_service.live_counts(session),
        "devices": {
            "out": {s.value: states.get(s.value, 0) for s in OUT_OF_SERVICE},
            "fleet": serving,
            "budget": int(serving * budget_fraction),
        },
    }


def rollups(session: Session, now: datetime) -> Snapshot:
    """The panels drawn from the log rollups: job latency and the slowest rack links."""
    history = TimeRange(now - HISTORY, now)
    series = latency_series(session, metric="job", seconds=WindowLength.LONG, rng=history)
    last = series.points[-1] if series.points else None
    return {
        "throughput": {"items": throughput(session, now)},
        "latency": {
            "unit": series.unit,
            "last": None
            if last is None
            else {"p50": last.p50, "p95": last.p95, "p99": last.p99, "count": last.count},
            "series": [p.p95 for p in series.points],
            "times": [p.start.timestamp() for p in series.points],  # where marks go
        },
        "links": link_panel(session, now),
    }


def link_panel(session: Session, now: datetime) -> Snapshot:
    """The slowest rack links: slow *now* (the last closed 10 s windows) first, then those slow
    over the last five minutes, which are recovering; and the whole rack × rack matrix as it is
    now. A link is hot from its first slow window, so a congested uplink shows within seconds,
    and cools as soon as its transfers are fast."""
    short = WindowLength.SHORT
    recent = {
        (c.src_rack, c.dst_rack): c
        for c in link_matrix(session, seconds=short, rng=TimeRange(now - RECENT, now)).cells
        if c.transfers
    }
    span = {
        (c.src_rack, c.dst_rack): c
        for c in link_matrix(session, seconds=short, rng=TimeRange(now - HOT_SPAN, now)).cells
        if c.transfers  # within a rack: its ToR switch
    }

    def hot(key: tuple[str, str]) -> bool:
        cell = recent.get(key)
        return bool(cell and cell.transfers >= HOT_MIN and cell.slow_fraction >= SLOW_CELL)

    def rank(key: tuple[str, str]) -> tuple[bool, float, float]:
        now_cell, cell = recent.get(key), span[key]
        return (hot(key), now_cell.slow_fraction if now_cell else 0.0, cell.slow_fraction)

    links = []
    for key in sorted(span, key=rank, reverse=True)[:HOT_LINKS]:
        cell, now_cell = span[key], recent.get(key)
        shown = now_cell if hot(key) and now_cell else cell
        points = link_series(
            session,
            src_rack=key[0],
            dst_rack=key[1],
            seconds=short,
            rng=TimeRange(now - HOT_SPAN, now),
        ).points
        links.append(
            {
                "src": key[0],
                "dst": key[1],
                "slow_fraction": shown.slow_fraction,
                "p95_ms": shown.p95_ms,
                "transfers": cell.transfers,
                "hot": hot(key),
                "recovering": not hot(key) and cell.slow_fraction >= SLOW_CELL,
                "series": [p.p95_ms for p in points],
            }
        )
    racks = sorted({rack for key in span for rack in key})
    index = {rack: i for i, rack in enumerate(racks)}
    # [source, target, slow share now (None: no transfer lately), hot]: compact, 1,600 cells
    # for 40 racks; a cell without transfers in five minutes is left out.
    cells = [
        [index[src], index[dst], recent[src, dst].slow_fraction if (src, dst) in recent else None,
         hot((src, dst))]
        for src, dst in sorted(span)
    ]  # fmt: skip
    return {"slow_cell": SLOW_CELL, "items": links, "matrix": {"racks": racks, "cells": cells}}


def throughput(session: Session, now: datetime) -> list[dict[str, Any]]:
    """The pushed metrics: each one's last complete window, its 15 minutes, its normal band."""
    found = []
    complete = now - timedelta(seconds=metrics_service.WINDOW_SECONDS)
    for metric in metrics_service.names(session)[:THROUGHPUT_METRICS]:
        name = metric["name"]
        kind, points = metrics_service.values(session, name, now - HISTORY, complete)
        last = points[-1][1] if points else None
        band = metrics_service.band(session, name, now)
        found.append(
            {
                "id": name,
                "name": name,
                "unit": "/s" if kind == "count" else "",
                "last": last,
                "series": [round(v, 3) for _, v in points],
                "times": [t.timestamp() for t, _ in points],
                "band": band,
                "outside": bool(band and last is not None and not band[0] <= last <= band[1]),
            }
        )
    return found


def marks(session: Session, now: datetime) -> Snapshot:
    """The events of the sparklines' 15 minutes, marked on them and listed (annotations.py)."""
    found = gather(session, window=Window(now - HISTORY, now), kinds=KINDS, limit=LIVE_MARKS)
    return {"items": [m.model_dump(mode="json") for m in found.items]}


class LiveFeed:
    """The publisher: polls the panels, fans changed ones out to every subscriber."""

    name = "live-feed"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        budget_fraction: float,
        tick: float = TICK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.budget_fraction = budget_fraction
        self.tick = tick
        self.clock = clock
        self.panels: Snapshot = {}
        self.version = 0
        self.subscribers: set[asyncio.Queue[str | None]] = set()
        self.task: asyncio.Task[None] | None = None
        self.polls = 0

    async def start(self) -> None:
        self.task = asyncio.create_task(self.run_forever(), name=self.name)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        for queue in list(self.subscribers):
            _offer(queue, None)  # each stream ends

    async def run_forever(self) -> None:
        while True:
            if not self.subscribers:  # nobody watches: no queries; the next screen gets it all
                self.panels, self.polls = {}, 0
            else:
                try:
                    await self.poll()
                except Exception:  # a database hiccup must not end the screen for good
                    log.exception("live feed: reading the panels failed; trying again")
            await asyncio.sleep(self.tick)

    async def poll(self) -> None:
        """Read the panels once; publish those that changed."""
        with_rollups = self.polls % ROLLUP_EVERY == 0
        self.polls += 1
        now = await asyncio.to_thread(self._read, with_rollups)
        changed = {name: data for name, data in now.items() if self.panels.get(name) != data}
        if not changed:
            return
        self.panels.update(changed)
        self.version += 1
        event = self._event(changed)
        for queue in list(self.subscribers):
            if queue.full():  # fallen behind: the whole state replaces its backlog
                while not queue.empty():
                    queue.get_nowait()
                event_for_it = self._event(self.panels)
            else:
                event_for_it = event
            _offer(queue, event_for_it)

    def _read(self, with_rollups: bool) -> Snapshot:
        with self.sessions() as session:
            found = snapshot(session, budget_fraction=self.budget_fraction)
            if with_rollups:
                now = datetime.fromtimestamp(self.clock(), UTC)
                found |= rollups(session, now)
                found["annotations"] = marks(session, now)
            return found

    def _event(self, panels: Snapshot) -> str:
        body = {"version": self.version, "at": self.clock(), "panels": panels}
        return f"id: {self.version}\nevent: panels\ndata: {json.dumps(body, default=str)}\n\n"

    def subscribe(self) -> asyncio.Queue[str | None]:
        """A new screen's queue, holding the whole state to start from."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_EVENTS)
        if self.panels:
            queue.put_nowait(self._event(self.panels))
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self.subscribers.discard(queue)


def _offer(queue: asyncio.Queue[str | None], item: str | None) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(item)


class LiveUnavailable(AppError):
    status_code = 503


def _feed(request: Request) -> LiveFeed:
    feed = getattr(request.app.state, "live_feed", None)
    if feed is None:
        raise LiveUnavailable("the live feed runs in `fleetops serve` only")
    assert isinstance(feed, LiveFeed)
    return feed


@router.get("/live", response_class=HTMLResponse)
def live_page(
    request: Request,
    who: PageUser,
    kiosk: Annotated[bool, Query(description="full screen, no navigation, large type")] = False,
) -> HTMLResponse:
    """The wall screen: everything an operator on duty watches, pushed as it changes."""
    return page(request, "live.html", who, kiosk=kiosk)


@router.get("/live/events")
async def live_events(request: Request, who: PageUser) -> Response:
    """Server-sent events: `panels` with the panels that changed (all of them first)."""
    feed = _feed(request)
    return StreamingResponse(
        _stream(request, feed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(request: Request, feed: LiveFeed) -> AsyncIterator[str]:
    queue = feed.subscribe()
    try:
        yield "retry: 2000\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": keep-alive\n\n"
                continue
            if item is None:
                return
            yield item
    finally:
        feed.unsubscribe(queue)
