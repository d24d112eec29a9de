"""The agent's loop: watch files, batch lines, ship one batch at a time, checkpoint after the ack.

Delivery is at-least-once: a checkpoint moves only after the server answered 200 (which it does
only after committing), so anything unacknowledged at a crash is read and sent again, and the
server's (token, file, offset) de-duplication turns that into exactly-once storage.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from fleetops.agent.checkpoint import Checkpoints, State
from fleetops.agent.progress import Log, Totals
from fleetops.agent.reader import Line
from fleetops.agent.ship import ShipOptions, Shipper
from fleetops.agent.tail import Tailer, TailOptions

LINE_OVERHEAD = 64  # JSON framing, file key and labels, roughly, per line


@dataclass(frozen=True)
class AgentOptions:
    state_dir: Path
    once: bool = False
    batch_lines: int = 1000
    batch_bytes: int = 4 * 1024 * 1024
    flush_interval: float = 1.0
    poll_interval: float = 0.25
    rescan_interval: float = 5.0
    progress_interval: float = 60.0


class Stopped(Exception):
    """SIGTERM: stop where we are; the checkpoint already says where to resume."""


def run_agent(tail: TailOptions, ship: ShipOptions, options: AgentOptions, *, log: Log) -> Totals:
    """Ship until stopped (or, with `once`, until everything now in the files is stored)."""
    with Checkpoints(options.state_dir) as checkpoints, _stop_on_sigterm():
        agent = Agent(tail, ship, options, checkpoints=checkpoints, log=log)
        try:
            agent.run()
        finally:
            agent.close()
        return agent.totals


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Batch:
    """Lines waiting to be sent, bounded by count and by approximate size."""

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.max_lines, self.max_bytes = max_lines, max_bytes
        self.lines: list[Line] = []
        self.size = 0
        self.since = 0.0  # when the oldest line was added (monotonic)

    @property
    def full(self) -> bool:
        return len(self.lines) >= self.max_lines or self.size >= self.max_bytes

    def room(self) -> tuple[int, int]:
        return self.max_lines - len(self.lines), self.max_bytes - self.size

    def add(self, lines: list[Line], now: float) -> None:
        if lines and not self.lines:
            self.since = now
        self.lines += lines
        self.size += sum(len(line.text or "") + LINE_OVERHEAD for line in lines)

    def take(self) -> list[Line]:
        lines, self.lines, self.size = self.lines, [], 0
        return lines


class Agent:
    """One tailer, one shipper, one state file."""

    def __init__(
        self,
        tail: TailOptions,
        ship: ShipOptions,
        options: AgentOptions,
        *,
        checkpoints: Checkpoints,
        log: Log,
    ) -> None:
        self.options = options
        self.ship_options = ship
        self.checkpoints = checkpoints
        self.log = log
        self.state: State = checkpoints.load()
        self.tailer = Tailer(tail, self.state, log)
        self.totals = Totals()
        self.shipper = Shipper(ship, log=log, totals=self.totals, wait=self._wait)
        self._reported = 0

    def close(self) -> None:
        self.tailer.close()
        self.shipper.close()

    def run(self) -> None:
        opts = self.options
        self.tailer.rescan(startup=True)
        self._save_if_dirty()
        self.log.info(
            f"shipping {self.tailer.open_files} files to {self.ship_options.server} as host "
            f"{self.ship_options.host!r}; checkpoints in {self.checkpoints.path}"
        )
        batch = _Batch(opts.batch_lines, opts.batch_bytes)
        now = time.monotonic()
        next_rescan, next_progress = now + opts.rescan_interval, now + opts.progress_interval
        while True:
            now = time.monotonic()
            if now >= next_rescan:
                self.tailer.rescan()
                next_rescan = now + opts.rescan_interval
            else:
                self.tailer.check()
            self._save_if_dirty()
            lines = self.tailer.take(*batch.room()) if not batch.full else []
            batch.add(lines, now)
            if opts.once and not lines and self.tailer.drained():
                if self.tailer.finish_all():
                    continue
                if not batch.lines:
                    break
                self._ship(batch.take())
            elif batch.lines and (batch.full or now - batch.since >= opts.flush_interval):
                self._ship(batch.take())
            elif not lines:
                pause = opts.poll_interval
                if batch.lines:
                    pause = min(pause, max(batch.since + opts.flush_interval - now, 0.0))
                time.sleep(max(pause, 0.005))
            if opts.progress_interval > 0 and now >= next_progress:
                next_progress = now + opts.progress_interval
                self._progress()
        self.log.info(f"done: {self.totals.summary()}")

    def _ship(self, batch: list[Line]) -> None:
        self.shipper.send(batch)
        self.tailer.acked(batch)
        self.checkpoints.save(self.state)
        self.tailer.dirty = False

    def _save_if_dirty(self) -> None:
        if self.tailer.dirty:
            self.checkpoints.save(self.state)
            self.tailer.dirty = False

    def _wait(self, seconds: float) -> None:
        """Sleep between retries, still noticing rotations so no rotated file is lost."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, max(self.options.poll_interval, 0.5)))
            self.tailer.check()
            self._save_if_dirty()

    def _progress(self) -> None:
        if self.totals.lines != self._reported:
            self._reported = self.totals.lines
            self.log.info(f"{self.totals.summary()}; {self.tailer.open_files} files open")
