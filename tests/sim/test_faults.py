"""Fault data, ground truth naming and the fault schedule's constraints."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

import pytest

from fleetops.sim.faults import FAULT_KINDS, Fault, Flaps, schedule_faults, yarn_workers
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload
from tests.sim.runs import START, fleet

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("kind", "target", "entity"),
    [
        ("slow_disk", "dn-0003", ("host", "dn-0003")),
        ("flapping_link", "dn-0003", ("host", "dn-0003")),
        ("bad_dimm", "dn-0003", ("host", "dn-0003")),
        ("full_disk", "dn-0003", ("host", "dn-0003")),
        ("bad_tor", "ams1-r001-tor", ("switch", "ams1-r001-tor")),
        ("congested_link", "ams1-r001-tor|uplink", ("link", "ams1-r001-tor|uplink")),
    ],
)
def test_entity_names_what_a_correct_finding_names(
    kind: str, target: str, entity: tuple[str, str]
) -> None:
    assert Fault(kind, target, START).entity() == entity


@pytest.mark.parametrize(
    ("kind", "target", "end", "intensity", "error"),
    [
        ("melted_cpu", "dn-0003", None, 1.0, "unknown fault kind"),
        ("congested_link", "ams1-r001-tor", None, 1.0, "only congested_link names an uplink"),
        ("bad_tor", "ams1-r001-tor|uplink", None, 1.0, "only congested_link names an uplink"),
        ("slow_disk", "dn-0003", START, 1.0, "must end after its onset"),
        ("slow_disk", "dn-0003", None, 0.0, "intensity"),
        ("slow_disk", "dn-0003", None, 1.5, "intensity"),
    ],
)
def test_fault_refuses_nonsense(
    kind: str, target: str, end: object, intensity: float, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        Fault(kind, target, START, end, intensity)  # type: ignore[arg-type]


def test_active_is_half_open() -> None:
    fault = Fault("slow_disk", "dn-0003", START, START + HOUR)
    assert not fault.active(START - timedelta(microseconds=1))
    assert fault.active(START)
    assert not fault.active(START + HOUR)
    assert Fault("slow_disk", "dn-0003", START).active(START + 1000 * HOUR)


def test_schedule_is_balanced_spread_distinct_and_one_fault_per_rack_at_a_time() -> None:
    doc = fleet()
    faults = schedule_faults(doc, count=13, seed=5, start=START, duration=HOUR)
    assert len(faults) == 13
    counts = Counter(f.kind for f in faults)
    assert set(counts) == set(FAULT_KINDS)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert len({f.target for f in faults}) == 13
    slot = HOUR / 13
    for i, fault in enumerate(faults):
        assert START + slot * i <= fault.onset < START + slot * (i + 1)
        assert fault.end is not None
        assert fault.onset < fault.end <= START + HOUR
        assert 0.6 <= fault.intensity <= 1.0
    rack_of = {h.hostname: h.rack for h in doc.hosts}
    rack_of.update({s.name: s.rack for s in doc.switches if s.rack})
    racks = [rack_of[f.target.removesuffix("|uplink")] for f in faults]
    for i, a in enumerate(faults):
        for j, b in enumerate(faults[:i]):
            overlap = a.onset < b.end and b.onset < a.end  # type: ignore[operator]
            assert not (overlap and racks[i] == racks[j]), (a, b)
    workers = {h for hosts in yarn_workers(doc).values() for h in hosts}
    for fault in faults:
        if fault.entity()[0] == "host":
            assert fault.target in workers  # a host the workload shows the fault on
    Workload(doc, seed=1, start=START, faults=faults)  # every target exists in the fleet


def test_schedule_is_deterministic_for_a_seed_and_honours_kinds() -> None:
    doc = fleet()
    one = schedule_faults(doc, count=6, seed=9, start=START, duration=HOUR)
    assert one == schedule_faults(doc, count=6, seed=9, start=START, duration=HOUR)
    assert one != schedule_faults(doc, count=6, seed=10, start=START, duration=HOUR)
    only = schedule_faults(doc, count=4, seed=9, start=START, duration=HOUR, kinds=("bad_dimm",))
    assert {f.kind for f in only} == {"bad_dimm"}
    assert schedule_faults(doc, count=0, seed=9, start=START, duration=HOUR) == []


def test_schedule_says_when_the_fleet_is_too_small() -> None:
    tiny = generate(hosts=10, racks=2)  # one Hadoop rack: a single ToR
    with pytest.raises(ValueError, match="no free target"):
        schedule_faults(tiny, count=3, seed=1, start=START, duration=timedelta(minutes=5))


def test_flaps_go_down_every_10_to_60_seconds_for_a_few_seconds() -> None:
    fault = Fault("flapping_link", "dn-0003", START, intensity=1.0)
    flaps = Flaps(fault, seed=3, onset_us=0, end_us=600_000_000)
    intervals = []
    t = 0
    while (interval := flaps.first_from(t)) is not None:
        intervals.append(interval)
        t = interval[0] + 1
    assert 20 <= len(intervals) <= 60
    for (down, up), (following, _) in itertools.pairwise(intervals):
        assert 1_000_000 <= up - down <= 8_000_000
        assert 5_000_000 <= following - up <= 15_000_000
        assert flaps.down(down)
        assert flaps.down(up - 1)
        assert not flaps.down(up)
    assert intervals[-1][0] < 600_000_000
    flaps.forget(intervals[10][0])
    assert flaps.intervals[0] == intervals[10]
    gentle = Flaps(Fault("flapping_link", "dn-0003", START, intensity=0.1), 3, 0, None)
    first, second = gentle.first_from(0), gentle.first_from(gentle.first_from(0)[0] + 1)  # type: ignore[index]
    assert first
    assert second
    assert second[0] - first[1] >= 27_000_000
