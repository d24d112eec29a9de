"""The workload: deterministic, at a realistic rate, in the real formats, bounded in memory."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import timedelta

import pytest

from fleetops.logs.parse.headers import split_header
from fleetops.sim.faults import Fault, schedule_faults
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload
from fleetops.sim.workload_model import SimLine
from tests.sim.catalog import COMPILED, kind_of
from tests.sim.runs import END, ONSET, START, fleet, run, simulate

SMALL = generate(hosts=60, racks=3)  # one Hadoop rack of 19 workers


def key(line: SimLine) -> tuple[object, ...]:
    return (line.ts, line.host, line.file, line.message, tuple(sorted(line.labels.items())))


def test_same_seed_same_lines_however_the_clock_is_advanced() -> None:
    faults = [Fault("flapping_link", "dn-0005", START + timedelta(seconds=30))]
    until = START + timedelta(minutes=3)
    once = Workload(SMALL, seed=4, start=START, faults=faults).advance(until)
    stepped = Workload(SMALL, seed=4, start=START, faults=faults)
    lines: list[SimLine] = []
    while stepped.now < until:
        lines += stepped.advance(min(until, stepped.now + timedelta(seconds=7.3)))
    assert len(once) > 3000
    assert [key(x) for x in once] == [key(x) for x in lines]
    other = Workload(SMALL, seed=5, start=START, faults=faults).advance(until)
    assert [key(x) for x in other] != [key(x) for x in once]


def test_advance_returns_each_line_once_in_time_order_within_the_window() -> None:
    workload = Workload(SMALL, seed=4, start=START)
    first = workload.advance(START + timedelta(seconds=40))
    assert workload.now == START + timedelta(seconds=40)
    second = workload.advance(START + timedelta(seconds=80))
    assert first
    assert second
    assert all(START < x.ts <= START + timedelta(seconds=40) for x in first)
    assert all(START + timedelta(seconds=40) < x.ts <= workload.now for x in second)
    stamps = [x.ts for x in first + second]
    assert stamps == sorted(stamps)
    assert workload.advance(workload.now) == []
    with pytest.raises(ValueError, match="back in time"):
        workload.advance(START)


def test_every_line_is_in_the_catalog_and_every_kind_shows_up() -> None:
    faults = tuple(schedule_faults(fleet(), count=6, seed=2, start=START, duration=END - START))
    r = simulate(faults)
    seen: Counter[tuple[str, str]] = Counter()
    for line in r.lines:
        found = kind_of(line.labels["app"], line.message)
        assert found, f"not in the catalog: {line}"
        seen[line.labels["app"], found[0]] += 1
    expected = {(app, kind) for app, kinds in COMPILED.items() for kind in kinds}
    rare = {  # each shown by its fault's own test
        ("spark-driver", "abort"),
        ("spark-driver", "user_exception"),
        ("kernel", "hung_task"),
        ("kernel", "mce"),
    }
    assert expected - rare <= set(seen), expected - rare - set(seen)


def test_headers_parse_to_the_lines_time_and_level() -> None:
    r = run()
    for line in r.lines[::50]:
        header = split_header(line.message, now=line.ts)
        assert header.ts is not None
        if line.labels["app"] in ("hdfs-datanode", "yarn-rm"):  # log4j: milliseconds
            assert header.ts == line.ts.replace(microsecond=line.ts.microsecond // 1000 * 1000)
            assert header.level in ("INFO", "WARN", "ERROR")
        else:  # Spark and syslog: seconds
            assert header.ts == line.ts.replace(microsecond=0)
        assert header.message
        assert not header.message[0].isspace()


def test_lines_come_from_the_right_files_with_labels_and_never_the_fault() -> None:
    r = run("slow_disk", "dn-0030")
    racks = {h.hostname: (h.cluster, h.rack) for h in fleet().hosts}
    files = {
        "hdfs-datanode": "/var/log/hadoop/hdfs/hadoop-hdfs-datanode-{host}.log",
        "yarn-rm": "/var/log/hadoop/yarn/hadoop-yarn-resourcemanager-{host}.log",
        "kernel": "/var/log/kern.log",
    }
    for line in r.lines:
        labels = line.labels
        app = labels["app"]
        assert (labels["cluster"], labels["rack"]) == racks[line.host]
        if app in files:
            assert set(labels) == {"app", "cluster", "rack"}
            assert line.file == files[app].format(host=line.host)
        else:
            assert set(labels) == {"app", "cluster", "rack", "application"}
            assert line.file.startswith(f"/var/log/hadoop-yarn/containers/{labels['application']}/")
            assert line.file.endswith("/stderr")
        assert "slow_disk" not in line.message
    rm_hosts = {x.host for x in r.lines if x.labels["app"] == "yarn-rm"}
    assert rm_hosts == {"dn-0026"}  # the cluster's first master


def test_rate_per_worker_is_one_to_two_lines_a_second() -> None:
    r = run()
    warm = START + timedelta(minutes=2)
    counts = Counter(x.host for x in r.lines if x.ts > warm)
    seconds = (END - warm).total_seconds()
    workers = [h.hostname for h in fleet().hosts if h.labels["role"] == "datanode"]
    rates = [counts[h] / seconds for h in workers]
    assert 1.0 <= statistics.mean(rates) <= 2.5
    assert 0.3 <= min(rates)
    assert max(rates) <= 8  # a host that also runs drivers writes their lines too
    k8s = [h.hostname for h in fleet().hosts if h.cluster == "k8s-stream"]
    assert all(counts[h] / seconds < 0.05 for h in k8s)  # kernel noise only


def test_tasks_take_seconds_and_jobs_tens_of_seconds_to_minutes() -> None:
    r = run()
    tasks = [int(m["ms"]) for _, m in r.of("spark-driver", "finished")]
    assert 2000 <= statistics.median(tasks) <= 20000
    per_host = Counter(m["host"] for line, m in r.after("spark-driver", "finished"))
    assert min(per_host.values()) / ((END - ONSET).total_seconds() / 60) >= 3  # several a minute
    took = [
        float(m.group(0).rsplit("took ", 1)[1][:-2]) for _, m in r.of("spark-driver", "job_done")
    ]
    assert len(took) >= 20
    assert 10 <= statistics.median(took) <= 300
    summaries = r.of("yarn-rm", "summary")
    assert len(summaries) == len(took)
    failed = sum(m["final"] == "FAILED" for _, m in summaries)
    assert failed <= len(summaries) * 0.1  # healthy fleet: failures are rare


def test_a_fault_injected_at_run_time_shows_from_then_on() -> None:
    workload = Workload(SMALL, seed=4, start=START)
    before = workload.advance(START + timedelta(minutes=2))
    workload.inject(Fault("bad_dimm", "dn-0005", START))  # onset already past: from now on
    after = workload.advance(START + timedelta(minutes=6))
    assert workload.faults == [Fault("bad_dimm", "dn-0005", START)]

    def edac(lines: list[SimLine]) -> list[SimLine]:
        return [x for x in lines if x.host == "dn-0005" and "EDAC" in x.message]

    assert not edac(before)
    assert len(edac(after)) >= 6
    with pytest.raises(ValueError, match="not in the fleet"):
        workload.inject(Fault("bad_tor", "nowhere-tor", START))


def test_state_stays_bounded_over_hours() -> None:
    faults = [
        Fault("flapping_link", "dn-0005", START + timedelta(minutes=1)),
        Fault("bad_dimm", "dn-0006", START + timedelta(minutes=1)),
        Fault("full_disk", "dn-0007", START + timedelta(minutes=1)),
    ]
    workload = Workload(SMALL, seed=4, start=START, faults=faults)
    samples = []
    for step in range(1, 13):
        workload.advance(START + timedelta(minutes=15 * step))
        samples.append(workload.stats())
    # A leak grows with time (three hours ≈ 250 applications); the state stays that of a moment.
    assert max(s["jobs"] for s in samples) <= 12
    assert max(s["events"] for s in samples) <= 600
    assert max(s["pending_lines"] for s in samples) <= 3000
    assert max(s["stamps"] for s in samples) <= 4097
    assert max(s["flap_intervals"] for s in samples) <= 3


def test_load_scales_the_jobs_and_zero_leaves_only_background() -> None:
    until = START + timedelta(minutes=6)

    def applications(lines: list[SimLine]) -> int:
        return sum("APP_ACCEPTED" in x.message for x in lines)

    normal = applications(Workload(fleet(), seed=4, start=START).advance(until))
    double = applications(Workload(fleet(), seed=4, start=START, load=2.0).advance(until))
    assert normal >= 20
    assert 1.3 * normal < double < 3 * normal  # Poisson arrivals: twice as many, give or take
    idle = Workload(fleet(), seed=4, start=START, load=0).advance(until)
    assert {x.labels["app"] for x in idle} <= {"kernel", "hdfs-datanode"}
    assert len(idle) < 500
    with pytest.raises(ValueError, match="load"):
        Workload(SMALL, seed=4, start=START, load=-1)


@pytest.mark.slow
def test_a_thousand_hosts_write_one_to_two_thousand_lines_a_second() -> None:
    # How fast the simulator makes them is measured in bench/simulation.py, not asserted here.
    doc = generate(hosts=1000, racks=40)
    faults = schedule_faults(doc, count=6, seed=1, start=START, duration=timedelta(minutes=10))
    workload = Workload(doc, seed=1, start=START, faults=faults)
    lines = 0
    for second in range(10, 601, 10):
        lines += len(workload.advance(START + timedelta(seconds=second)))
    assert 600_000 <= lines <= 1_200_000


def test_a_repaired_host_stops_writing_its_fault() -> None:
    workload = Workload(SMALL, seed=4, start=START, faults=[Fault("bad_dimm", "dn-0005", START)])
    before = workload.advance(START + timedelta(minutes=5))
    assert any("EDAC" in line.message for line in before if line.host == "dn-0005")
    assert workload.repair("dn-0005") == 1
    assert workload.repair("dn-0005") == 0  # nothing left to repair
    after = workload.advance(START + timedelta(minutes=15))
    assert after  # the host and the fleet keep working
    assert not [line for line in after if line.host == "dn-0005" and "EDAC" in line.message]
