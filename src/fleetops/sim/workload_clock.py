"""The workload's clock and log writers, shared by every part of the simulation.

A discrete-event loop over integer microseconds since `start`: handlers are scheduled with `_at`
or `_after` and write lines with `_dn`, `_rm`, `_spark` and `_kernel`, each in the format the real
software uses. The state the parts share is declared here, and set up by `Workload`.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetops.sim.faults import Effects
from fleetops.sim.workload_model import MONTHS, Container, S, SimHost, YarnCluster, utc


class WorkloadClock:
    """The event queue, the pending lines and the fleet every part of the workload reads."""

    start: datetime
    seed: int
    _rng: random.Random
    _epoch: int
    _t: int  # time of the event being handled
    _seq: itertools.count[int]
    _events: list[tuple[int, int, Callable[[Any], None], Any]]
    _lines: list[tuple[int, int, str, str, str, dict[str, str]]]
    _stamps: dict[int, tuple[str, str, str]]
    _effects: Effects
    _hosts: dict[str, SimHost]
    _clusters: dict[str, YarnCluster]
    _tor_rack: dict[str, str]
    _rtt: dict[frozenset[str], float]
    _next_block: int

    def _us(self, at: datetime) -> int:
        return (utc(at) - self.start) // timedelta(microseconds=1)

    def _at(self, us: int, handler: Callable[[Any], None], arg: Any) -> None:
        heapq.heappush(self._events, (us, next(self._seq), handler, arg))

    def _after(self, seconds: float, handler: Callable[[Any], None], arg: Any) -> None:
        self._at(self._t + int(seconds * S) + 1, handler, arg)

    def _stamp(self, us: int) -> tuple[tuple[str, str, str], int]:
        """(log4j ISO8601 to the second, Spark's yy/MM/dd, syslog's 'Mmm dd'), and the µs."""
        sec, frac = divmod(self._epoch + us, S)
        stamp = self._stamps.get(sec)
        if stamp is None:
            d = datetime.fromtimestamp(sec, UTC)
            hms = f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
            stamp = (
                f"{d.year:04d}-{d.month:02d}-{d.day:02d} {hms}",
                f"{d.year % 100:02d}/{d.month:02d}/{d.day:02d} {hms}",
                f"{MONTHS[d.month - 1]} {d.day:2d} {hms}",
            )
            if len(self._stamps) > 4096:
                self._stamps.clear()
            self._stamps[sec] = stamp
        return stamp, frac

    def _line(self, us: int, host: str, file: str, labels: dict[str, str], line: str) -> None:
        heapq.heappush(self._lines, (us, next(self._seq), host, file, line, labels))

    def _dn(self, us: int, host: SimHost, head: str, msg: str) -> None:
        """A DataNode line: `2026-11-26 17:02:03,123 INFO <logger>: msg`."""
        stamp, frac = self._stamp(us)
        line = f"{stamp[0]},{frac // 1000:03d} {head}: {msg}"
        self._line(us, host.name, host.dn_file, host.dn_labels, line)

    def _rm(self, us: int, cluster: YarnCluster, head: str, msg: str) -> None:
        stamp, frac = self._stamp(us)
        line = f"{stamp[0]},{frac // 1000:03d} {head}: {msg}"
        self._line(us, cluster.rm.name, cluster.rm_file, cluster.rm_labels, line)

    def _spark(self, us: int, c: Container, head: str, msg: str) -> None:
        """A driver/executor line: `26/11/26 17:02:03 INFO scheduler.TaskSetManager: msg`."""
        self._line(us, c.host.name, c.file, c.labels, f"{self._stamp(us)[0][1]} {head}: {msg}")

    def _kernel(self, us: int, host: SimHost, msg: str) -> None:
        """kern.log as rsyslog writes it: `Nov 26 17:02:03 dn-0042 kernel: [  12.345678] msg`."""
        up = host.uptime + us
        line = f"{self._stamp(us)[0][2]} {host.name} kernel: [{up // S:5d}.{up % S:06d}] {msg}"
        self._line(us, host.name, "/var/log/kern.log", host.kern_labels, line)
