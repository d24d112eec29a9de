"""Shared simulated runs, each built once per test session (the simulator is pure)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fleetops.inventory.document import InventoryDoc
from fleetops.sim.faults import Fault
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload
from fleetops.sim.workload_model import SimLine
from tests.sim.catalog import COMPILED

START = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)
ONSET = START + timedelta(minutes=5)
END = START + timedelta(minutes=15)


@functools.cache
def fleet() -> InventoryDoc:
    """200 hosts on 8 racks: 4 Hadoop racks (24 workers and a master each), 4 Kubernetes racks."""
    return generate(hosts=200, racks=8)


@dataclass(frozen=True)
class Run:
    faults: tuple[Fault, ...]
    lines: tuple[SimLine, ...]
    _cache: dict[tuple[str, str], list[tuple[SimLine, re.Match[str]]]] = field(
        default_factory=dict, compare=False
    )

    def of(self, app: str, kind: str) -> list[tuple[SimLine, re.Match[str]]]:
        """The lines of one catalog kind, with their matches."""
        if (app, kind) not in self._cache:
            pattern = COMPILED[app][kind]
            self._cache[app, kind] = [
                (line, m)
                for line in self.lines
                if line.labels["app"] == app and (m := pattern.match(line.message))
            ]
        return self._cache[app, kind]

    def before(self, app: str, kind: str) -> Iterator[tuple[SimLine, re.Match[str]]]:
        return ((line, m) for line, m in self.of(app, kind) if line.ts < ONSET)

    def after(self, app: str, kind: str) -> Iterator[tuple[SimLine, re.Match[str]]]:
        return ((line, m) for line, m in self.of(app, kind) if line.ts >= ONSET)


def simulate(faults: tuple[Fault, ...], *, seed: int = 11, until: datetime = END) -> Run:
    workload = Workload(fleet(), seed=seed, start=START, faults=faults)
    return Run(faults, tuple(workload.advance(until)))


@functools.cache
def run(kind: str | None = None, target: str = "", *, intensity: float = 1.0) -> Run:
    """Fifteen simulated minutes with one fault from minute 5 on (or none)."""
    return simulate((Fault(kind, target, ONSET, None, intensity),) if kind else ())


def addresses() -> dict[str, tuple[str, str]]:
    """IP → (host, rack)."""
    return {h.address: (h.hostname, h.rack or "") for h in fleet().hosts}


def host_of(name: str) -> tuple[str, str]:
    """(address, rack) of a host."""
    return next((h.address, h.rack or "") for h in fleet().hosts if h.hostname == name)
