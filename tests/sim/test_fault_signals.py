"""Each fault kind shows its signals from its onset on, and only on its host, rack or path.

One run per kind: 200 hosts, fifteen simulated minutes, the fault from minute 5 on.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from fleetops.sim.workload_model import SimLine
from tests.sim.runs import ONSET, Run, addresses, host_of, run

HOST = "dn-0030"  # a worker of rack r002
RACK, TOR = "r002", "fra1-r002-tor"
SETTLE = ONSET + timedelta(seconds=60)  # tasks started before the onset have finished


def task_ms(r: Run, keep: Callable[[str, datetime], bool]) -> list[int]:
    """Durations of the successful tasks the driver reports, for hosts/times `keep` picks."""
    return [
        int(m["ms"]) for line, m in r.of("spark-driver", "finished") if keep(m["host"], line.ts)
    ]


def read_ns_per_byte(r: Run, keep: Callable[[str, str, datetime], bool]) -> list[float]:
    """Remote HDFS reads' ns per byte, for (server rack, reader rack, time) `keep` picks."""
    ip = addresses()
    out = []
    for line, m in r.of("hdfs-datanode", "clienttrace"):
        if m["op"] == "HDFS_READ" and m["src"] != m["dst"]:
            start = line.ts - timedelta(microseconds=int(m["ns"]) // 1000)
            if keep(ip[m["src"]][1], ip[m["dst"]][1], start):
                out.append(int(m["ns"]) / int(m["bytes"]))
    return out


def hosts(lines: Iterable[tuple[SimLine, object]]) -> Counter[str]:
    return Counter(line.host for line, _ in lines)


def ratio(a: list[float] | list[int], b: list[float] | list[int]) -> float:
    return statistics.median(a) / statistics.median(b)


def test_slow_disk_slows_the_hosts_tasks_and_reads_and_makes_its_datanode_complain() -> None:
    r = run("slow_disk", HOST)
    ip = host_of(HOST)[0]
    after = task_ms(r, lambda h, ts: h == HOST and ts >= SETTLE)
    peers_after = task_ms(r, lambda h, ts: h != HOST and ts >= SETTLE)
    before = task_ms(r, lambda h, ts: h == HOST and ts < ONSET)
    peers_before = task_ms(r, lambda h, ts: h != HOST and ts < ONSET)
    assert len(after) >= 15
    assert len(before) >= 15
    assert ratio(after, peers_after) > 3
    assert 0.5 < ratio(before, peers_before) < 2
    served = [
        int(m["ns"]) / int(m["bytes"])
        for line, m in r.of("hdfs-datanode", "clienttrace")
        if m["op"] == "HDFS_READ" and m["src"] == ip and line.ts >= SETTLE
    ]
    others = read_ns_per_byte(r, lambda a, b, ts: ts >= SETTLE)
    assert ratio(served, others) > 3
    slow = [*r.after("hdfs-datanode", "slow_write"), *r.after("hdfs-datanode", "slow_flush")]
    assert hosts(slow)[HOST] >= 40  # several a minute
    assert sum(n for h, n in hosts(slow).items() if h != HOST) < hosts(slow)[HOST] / 3
    assert not [m for line, m in r.before("hdfs-datanode", "slow_flush")]
    io_errors = hosts(r.of("kernel", "io_error"))
    assert set(io_errors) == {HOST}
    assert io_errors[HOST] >= 3
    assert not list(r.before("kernel", "io_error"))


def test_congested_uplink_slows_cross_rack_transfers_of_its_rack_only() -> None:
    r = run("congested_link", f"{TOR}|uplink")
    cross = read_ns_per_byte(r, lambda a, b, ts: a != b and RACK in (a, b) and ts >= ONSET)
    cross_others = read_ns_per_byte(r, lambda a, b, ts: a != b and RACK not in (a, b))
    intra = read_ns_per_byte(r, lambda a, b, ts: a == b == RACK and ts >= ONSET)
    intra_others = read_ns_per_byte(r, lambda a, b, ts: a == b != RACK)
    cross_before = read_ns_per_byte(r, lambda a, b, ts: a != b and RACK in (a, b) and ts < ONSET)
    assert ratio(cross, cross_others) > 4
    assert 0.8 < ratio(intra, intra_others) < 1.25
    assert 0.8 < ratio(cross_before, cross_others) < 1.25
    assert not r.of("hdfs-datanode", "xceiver_error")  # slow, not failing


def test_bad_tor_slows_and_breaks_every_transfer_touching_its_rack() -> None:
    r = run("bad_tor", TOR)
    intra = read_ns_per_byte(r, lambda a, b, ts: a == b == RACK and ts >= ONSET)
    cross = read_ns_per_byte(r, lambda a, b, ts: a != b and RACK in (a, b) and ts >= ONSET)
    elsewhere = read_ns_per_byte(r, lambda a, b, ts: RACK not in (a, b))
    before = read_ns_per_byte(r, lambda a, b, ts: RACK in (a, b) and ts < ONSET)
    assert ratio(intra, elsewhere) > 3
    assert ratio(cross, elsewhere) > 3
    assert 0.8 < ratio(before, elsewhere) < 1.25
    ip = addresses()
    errors = r.of("hdfs-datanode", "xceiver_error")
    assert len(errors) >= 20
    for line, m in errors:
        assert line.ts >= ONSET
        assert RACK in (ip[m["reader"]][1], ip[m["server"]][1])
    assert len(r.of("spark-executor", "read_failed")) == len(errors)


def test_bad_dimm_logs_rising_corrected_errors_on_one_dimm_of_its_host() -> None:
    r = run("bad_dimm", HOST)
    ces = [(line, m) for line, m in r.of("kernel", "edac_ce") if line.host == HOST]
    assert ces
    assert min(line.ts for line, _ in ces) >= ONSET
    assert len(ces) >= 20  # several a minute over ten minutes
    assert len({m["dimm"] for _, m in ces}) == 1
    middle = ONSET + timedelta(minutes=5)
    first = sum(line.ts < middle for line, _ in ces)
    assert len(ces) - first > first  # the rate rises
    others = [line for line, _ in r.of("kernel", "edac_ce") if line.host != HOST]
    assert len(others) <= 10  # background: a rare single error somewhere in the fleet
    assert set(hosts(r.of("kernel", "mce"))) == {HOST}


def test_flapping_link_goes_down_and_up_and_transfers_fail_only_while_down() -> None:
    r = run("flapping_link", HOST)
    ip = host_of(HOST)[0]
    downs = [line.ts for line, _ in r.of("kernel", "link_down")]
    ups = [line.ts for line, _ in r.of("kernel", "link_up")]
    assert set(hosts(r.of("kernel", "link_down"))) == {HOST}
    assert set(hosts(r.of("kernel", "link_up"))) == {HOST}
    assert min(downs) >= ONSET
    assert 20 <= len(downs) <= 100
    intervals = list(zip(downs, ups, strict=False))
    assert all(down < up for down, up in intervals)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(intervals))

    def down_at(ts: datetime) -> bool:
        return any(down <= ts < up for down, up in intervals)

    failures = r.of("spark-executor", "connect_failed")
    assert len(failures) >= 10
    for line, m in failures:  # logged after a 3 s connect timeout, by or about the host
        assert down_at(line.ts - timedelta(seconds=3))
        assert m["server"] == ip or line.host == HOST
    for line, m in r.of("hdfs-datanode", "clienttrace"):
        if ip in (m["src"], m["dst"]) and m["src"] != m["dst"]:
            assert not down_at(line.ts - timedelta(microseconds=int(m["ns"]) // 1000))


def test_full_disk_fails_the_hosts_tasks_and_writes_with_no_space_left() -> None:
    r = run("full_disk", HOST)
    no_space = [
        (line, m) for line, m in r.of("spark-driver", "lost") if "No space left" in m["error"]
    ]
    assert len(no_space) >= 20
    assert {m["host"] for _, m in no_space} == {HOST}
    assert min(line.ts for line, _ in no_space) >= ONSET
    for kind in ("volume_check", "out_of_space"):
        found = r.of("hdfs-datanode", kind)
        assert found
        assert set(hosts(found)) == {HOST}
        assert min(line.ts for line, _ in found) >= ONSET
    ip = host_of(HOST)[0]
    excluded = [line for line, _ in r.of("spark-executor", "excluding") if ip in line.message]
    assert len(excluded) >= len(r.of("hdfs-datanode", "out_of_space"))


def test_a_weak_fault_is_weaker_but_still_visible() -> None:
    strong, weak = run("slow_disk", HOST), run("slow_disk", HOST, intensity=0.3)

    def slowdown(r: Run) -> float:
        return ratio(
            task_ms(r, lambda h, ts: h == HOST and ts >= SETTLE),
            task_ms(r, lambda h, ts: h != HOST and ts >= SETTLE),
        )

    assert 3 < slowdown(weak) < slowdown(strong)
