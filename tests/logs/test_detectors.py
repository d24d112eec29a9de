"""Detectors on the simulated fleet: each fault kind is found on the right entity, soon, and a
healthy fleet raises nothing. Pure: the simulator's lines go straight into the aggregator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleetops.inventory.document import InventoryDoc
from fleetops.inventory.service import Topology
from fleetops.logs.aggregate.rules import load_rules
from fleetops.logs.aggregate.stream import Aggregator
from fleetops.logs.detect.detectors import Candidate, DetectorConfig, detect_all
from fleetops.logs.ingest.pipeline import StoredLine
from fleetops.logs.parse.headers import split_header
from fleetops.sim.faults import Fault
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload

START = datetime(2026, 11, 26, 9, 0, 3, tzinfo=UTC)
FLEET = generate(hosts=300, racks=12, seed=4)
SCORED = {"straggler", "slow_link", "slow_disk", "hardware_error"}


def topology(fleet: InventoryDoc) -> Topology:
    tors = {s.rack: s.name for s in fleet.switches if s.role == "tor" and s.rack}
    return Topology(
        rack_of={h.hostname: h.rack for h in fleet.hosts if h.rack},
        tor_of_rack=tors,
        host_of_address={h.address: h.hostname for h in fleet.hosts if h.address},
        dc_of_rack={r.name: r.datacenter for r in fleet.racks},
    )


def run(faults: list[Fault], minutes: float) -> list[tuple[datetime, Candidate]]:
    """Every candidate the detectors propose at each closed 10 s window, with its time."""
    workload = Workload(FLEET, seed=11, start=START, faults=faults)
    agg = Aggregator(load_rules(), lambda: topology(FLEET))
    config = DetectorConfig()
    found: list[tuple[datetime, Candidate]] = []
    at = START
    while at < START + timedelta(minutes=minutes):
        at += timedelta(seconds=2)
        stored = []
        for sim in workload.advance(at):
            header = split_header(sim.message)
            stored.append(
                StoredLine(sim.ts, sim.host, "sim", 0, header.message, header.level, sim.labels, 0)
            )
        agg.add(stored)
        closed = agg.advance()
        if closed is not None:
            for end in closed.windows_closed:
                found += [(end, c) for c in detect_all(agg, end, config)]
    return found


def test_a_healthy_fleet_raises_nothing() -> None:
    found = [c for _, c in run([], minutes=5) if c.kind in SCORED]
    assert found == []


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("slow_disk", "dn-0030"),
        ("flapping_link", "dn-0031"),
        ("bad_dimm", "dn-0057"),
        ("full_disk", "dn-0058"),
        ("bad_tor", "fra1-r002-tor"),
        ("congested_link", "iad1-r003-tor|uplink"),
    ],
)
def test_each_fault_is_found_on_its_entity(kind: str, target: str) -> None:
    onset = START + timedelta(minutes=2, seconds=7)
    fault = Fault(kind, target, onset, onset + timedelta(minutes=2), intensity=0.8)
    found = [(at, c) for at, c in run([fault], minutes=4.5) if c.kind in SCORED]
    right = [at for at, c in found if (c.entity_type, c.entity) == fault.entity()]
    assert right, f"no finding named {fault.entity()}: {[c.title for _, c in found]}"
    assert min(right) - onset <= timedelta(seconds=45)
    rack = {s.name: s.rack for s in FLEET.switches}.get(target.split("|")[0])
    behind = {h.hostname for h in FLEET.hosts if rack is not None and h.rack == rack}
    wrong = [
        c.title
        for _, c in found
        if (c.entity_type, c.entity) != fault.entity() and c.entity not in behind
    ]
    assert wrong == []
