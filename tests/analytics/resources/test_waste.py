"""The waste report's arithmetic on hand-made traces, the real sample against an independent
count, and `fleetops resources waste`'s output and exit codes."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from fleetops.analytics.resources import traces, waste
from fleetops.analytics.resources.exceptions import TraceError
from fleetops.analytics.resources.recommenders import Settings
from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from tests.analytics.resources.test_evaluate import SAMPLE, env
from tests.analytics.resources.test_traces import write_trace
from tests.fixtures.server import run_cli

PRICES = waste.Prices(core_hour=0.04, gb_hour=0.006, gb_per_unit=10.0)
# Task M1 asks 2 cores (200 hundredths) and 1.0 of memory, R2 1 core and 0.5.
TASKS = "0,j_1,M1,7200,200,1.0,2\n3000,j_1,R2,1800,100,0.5,1\n"
INSTANCES = """\
0,j_1,M1,i1,7200,50,0.25
1800,j_1,M1,i2,3600,300,1.5
3000,j_1,R2,i3,1800,100,0.1
"""
# i1 runs 0-7200 s using 0.5 core and 0.25; i2 1800-5400 s using 3 cores and 1.5 (more than it
# asked for); i3 3000-4800 s using exactly its 1 core, and 0.1.


def test_waste_is_counted_instance_by_instance(tmp_path: Path) -> None:
    report = waste.report(write_trace(tmp_path / "t", TASKS, INSTANCES), prices=PRICES, method=None)
    # CPU core-hours: requested 2 x 2 + 2 x 1 + 1 x 0.5 = 6.5; used 0.5 x 2 + 3 x 1 + 1 x 0.5 =
    # 4.5; unused i1 1.5 x 2 = 3, i2 and i3 none. Netted it would be 6.5 - 4.5 = 2: i2's over-use
    # must not hide i1's idle request.
    assert report["totals"]["cpu"] == {
        "requested": 6.5,
        "used": 4.5,
        "wasted": 3.0,
        "waste_share": round(3 / 6.5, 4),
        "unit": "core-hours",
        "wasted_cost": 0.12,  # 3 core-hours x 0.04
    }
    # memory unit-hours: requested 1 x 2 + 1 x 1 + 0.5 x 0.5 = 3.25; used 0.25 x 2 + 1.5 x 1 +
    # 0.1 x 0.5 = 2.05; unused i1 0.75 x 2 + i3 0.4 x 0.5 = 1.7, worth 1.7 x 10 GB x 0.006
    mem = report["totals"]["mem"]
    assert (mem["requested"], mem["used"], mem["wasted"]) == (3.25, 2.05, 1.7)
    assert mem["wasted_cost"] == 0.1  # 0.102, to the cent
    assert "peak" not in mem  # the Alibaba trace has no peaks
    assert report["trace"] | {"source": ""} == {
        "instances": 3,
        "groups": 2,
        "start_s": 0.0,
        "end_s": 7200.0,
        "span_s": 7200.0,
        "key": "task",
        "source": "",
    }
    # groups by wasted cost: M 3 x 0.04 + 1.5 x 10 x 0.006 = 0.21; R 0.2 x 10 x 0.006 = 0.012
    groups = report["groups"]
    assert [(g["group"], g["wasted_cost"]) for g in groups] == [
        ("M|2.0|1.0", 0.21),
        ("R|1.0|0.5", 0.01),
    ]
    assert groups[0]["cpu"] | {"freed": 0} == {
        "requested": 6.0,
        "used": 4.0,
        "wasted": 3.0,
        "waste_share": 0.5,
        "freed": 0,
        "recommendation": None,
    }
    assert report["rightsizing"] is None


def test_each_instance_is_split_over_the_buckets_it_overlaps(tmp_path: Path) -> None:
    report = waste.report(
        write_trace(tmp_path / "t", TASKS, INSTANCES), prices=PRICES, method=None, bucket_s=3600
    )
    buckets = report["timeline"]["buckets"]
    assert [b["start_s"] for b in buckets] == [0.0, 3600.0]
    # 0-3600 s: i1 all of it (2 cores), i2 1800-3600 (2 cores x 1800 s), i3 3000-3600 (1 core x
    # 600 s): (7200 + 3600 + 600) / 3600 cores on average; used (1800 + 5400 + 600) / 3600.
    # 3600-7200 s: i1 3600 s, i2 3600-5400, i3 3600-4800 (1200 s): (7200 + 3600 + 1200) / 3600;
    # used (1800 + 5400 + 1200) / 3600.
    assert [b["cpu_allocated"] for b in buckets] == [round(11400 / 3600, 3), round(12000 / 3600, 3)]
    assert [b["cpu_used"] for b in buckets] == [round(7800 / 3600, 3), round(8400 / 3600, 3)]
    # memory: (3600 + 1800 + 0.5 x 600) / 3600 and (3600 + 1800 + 0.5 x 1200) / 3600
    assert [b["mem_allocated"] for b in buckets] == [round(5700 / 3600, 3), round(6000 / 3600, 3)]
    assert [b["cpu_rightsized"] for b in buckets] == [None, None]
    # the buckets add up to the totals: each instance counted once, whole
    assert sum(b["cpu_allocated"] for b in buckets) == pytest.approx(6.5, abs=0.001)


def test_empty_buckets_stay_and_the_default_width_is_round(tmp_path: Path) -> None:
    # one instance 0-100 s, another 1000-1100 s: a default of 1100 / 60 = 18.3 s rounds up to 30
    trace = write_trace(
        tmp_path / "t",
        "0,j_1,M1,100,100,1.0,1\n1000,j_1,M2,100,100,1.0,1\n",
        "0,j_1,M1,i1,100,50,0.5\n1000,j_1,M2,i2,100,50,0.5\n",
    )
    timeline = waste.report(trace, prices=PRICES, method=None)["timeline"]
    assert timeline["bucket_s"] == 30.0
    buckets = timeline["buckets"]
    assert len(buckets) == 37  # 0 to 1110 s
    # 90-120 s holds i1's last 10 s: 1 core x 10 / 30; nothing runs from 120 to 990 s
    assert buckets[3]["cpu_allocated"] == round(10 / 30, 3)
    assert all(b["cpu_allocated"] == 0 for b in buckets[4:33])
    assert waste.default_bucket(13836) == 300.0
    assert waste.default_bucket(30 * 86400) == 86400.0


def test_rightsizing_frees_what_the_recommendation_leaves(tmp_path: Path) -> None:
    # one task asking 4 cores and 1.0 of memory, two instances of an hour using 1 core each and
    # 0.2 and 0.4 of memory. KRR: CPU p95 of the minute samples = 1 core; memory max 0.4 + 15 %
    # = 0.46. Freed: CPU (4 - 1) x 2 instance-hours = 6 core-hours, memory (1 - 0.46) x 2 = 1.08
    trace = write_trace(
        tmp_path / "t",
        "0,j_1,M1,3600,400,1.0,2\n",
        "0,j_1,M1,i1,3600,100,0.2\n0,j_1,M1,i2,3600,100,0.4\n",
    )
    report = waste.report(trace, prices=PRICES, method="krr", bucket_s=3600)
    freed = report["rightsizing"]
    assert freed["cpu"] == {
        "unit_hours": 6.0,
        "per_hour": 6.0,  # the trace spans an hour
        "share_of_requested": 0.75,
        "money": 0.24,
        # its one bucket: 8 cores allocated, 2 right-sized
        "busiest_bucket": {"start_s": 0.0, "allocated": 8.0, "rightsized": 2.0, "freed": 6.0},
    }
    assert freed["mem"]["unit_hours"] == pytest.approx(1.08)
    assert freed["mem"]["gb_hours"] == pytest.approx(10.8)  # 10 GB a unit
    assert freed["mem"]["share_of_requested"] == 0.54
    # 6 x 0.04 + 10.8 x 0.006 = 0.3048
    assert freed["money"] == {"over_trace": 0.3, "per_hour": 0.3, "memory_priced": True}
    (group,) = report["groups"]
    assert (group["cpu"]["recommendation"], group["mem"]["recommendation"]) == (1.0, 0.46)
    (bucket,) = report["timeline"]["buckets"]
    assert (bucket["cpu_rightsized"], bucket["mem_rightsized"]) == (2.0, 0.92)


def test_memory_without_a_size_has_no_price(tmp_path: Path) -> None:
    prices = waste.Prices(core_hour=0.04, gb_hour=0.005)
    report = waste.report(write_trace(tmp_path / "t", TASKS, INSTANCES), prices=prices, method=None)
    assert report["totals"]["mem"]["wasted_cost"] is None
    # ranked by CPU alone: M wastes 3 core-hours, R none
    assert [g["wasted_cost"] for g in report["groups"]] == [0.12, 0.0]
    with pytest.raises(ValueError, match="must be positive"):
        waste.Prices(core_hour=1, gb_hour=1, gb_per_unit=0)


def test_peaks_are_used_where_the_source_has_them(tmp_path: Path) -> None:
    db = traces.connect()
    traces.load(db, write_trace(tmp_path / "t", TASKS, INSTANCES), name="tr")
    # a source with peaks: here each instance peaks at 1.5 x its CPU average, memory has none
    sql = f"select *, cpu * 1.5 as cpu_peak from ({traces.samples(db, trace='tr', key='task')})"
    assert waste.instances(db, sql, None, Settings()) == ("cpu",)
    totals = waste.totals(db, PRICES, ("cpu",))
    # peaks 0.75, 4.5, 1.5 cores: used 0.75 x 2 + 4.5 + 1.5 x 0.5 = 6.75 core-hours; unused
    # against the peak only i1's (2 - 0.75) x 2 = 2.5
    assert totals["cpu"]["peak"] == {
        "used": 6.75,
        "wasted": 2.5,
        "waste_share": round(2.5 / 6.5, 4),
    }
    assert "peak" not in totals["mem"]


def test_an_empty_trace_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no usage row"):
        waste.report(write_trace(tmp_path / "t", "", ""), prices=PRICES, method=None)


def test_too_many_buckets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most 10,000"):
        waste.report(
            write_trace(tmp_path / "t", TASKS, INSTANCES), prices=PRICES, method=None, bucket_s=0.5
        )


def independent_totals(directory: Path) -> tuple[int, float, float, float]:
    """Instances, and requested, used and unused CPU core-hours, by Python's csv module."""
    requests = {}
    with gzip.open(directory / "batch_tasks_0-1200s.csv.gz", "rt", newline="") as tasks:
        for row in csv.reader(tasks):
            requests[row[1], row[2]] = float(row[4]) / 100
    count, requested, used, unused = 0, 0.0, 0.0, 0.0
    with gzip.open(directory / "batch_instances_0-1200s.csv.gz", "rt", newline="") as instances:
        for row in csv.reader(instances):
            request, duration, cpu = requests[row[1], row[2]], float(row[4]), float(row[5]) / 100
            count += 1
            requested += request * duration
            used += cpu * duration
            unused += max(0.0, request - cpu) * duration
    return count, requested / 3600, used / 3600, unused / 3600


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"{SAMPLE} (the shared data) is absent")
def test_the_sample_adds_up_as_python_counts_it() -> None:
    result = run_cli(
        env(), "resources", "waste", str(SAMPLE), "--method", "none", "-o", "json", timeout=600
    )
    assert result.returncode == EXIT_OK, result.stderr
    report = json.loads(result.stdout)
    count, requested, used, unused = independent_totals(SAMPLE)
    assert report["trace"]["instances"] == count == 1_000_805
    cpu = report["totals"]["cpu"]
    assert cpu["requested"] == pytest.approx(requested, abs=0.001)
    assert cpu["used"] == pytest.approx(used, abs=0.001)
    assert cpu["wasted"] == pytest.approx(unused, abs=0.001)
    assert cpu["wasted"] > cpu["requested"] - cpu["used"]  # not netted
    buckets = report["timeline"]["buckets"]
    width = report["timeline"]["bucket_s"]
    assert sum(b["cpu_allocated"] for b in buckets) * width / 3600 == pytest.approx(
        requested, rel=1e-4
    )
    assert len(report["groups"]) == 10


def test_the_table_and_the_errors(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t", TASKS, INSTANCES)
    result = run_cli(
        env(), "resources", "waste", str(trace), "--method", "none", "--bucket", "3600"
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert "M|2.0|1.0" in result.stdout
    assert "3,600" in result.stdout  # the second bucket
    bad = write_trace(tmp_path / "bad", TASKS, INSTANCES + "0,j_1,M1,i4,10,x,0.1\n", gz=False)
    result = run_cli(env(), "resources", "waste", str(bad))
    assert result.returncode == EXIT_ERROR
    assert "batch_instances_x.csv line 4: cpu_avg 'x': not a number" in result.stderr
    missing = run_cli(env(), "resources", "waste", str(tmp_path / "nowhere"))
    assert missing.returncode == EXIT_NOT_FOUND
    for option, value in (("--key", "host"), ("--method", "magic"), ("--bucket", "0")):
        refused = run_cli(env(), "resources", "waste", str(trace), option, value)
        assert refused.returncode == EXIT_USAGE, refused.stderr
        assert option in refused.stderr


def test_the_memory_size_comes_from_the_settings(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t", TASKS, INSTANCES)
    sized = env() | {"FLEETOPS_RESOURCES_GB_PER_MEMORY_UNIT": "10"}
    result = run_cli(sized, "resources", "waste", str(trace), "--method", "none", "-o", "json")
    assert result.returncode == EXIT_OK, result.stderr
    report = json.loads(result.stdout)
    assert report["prices"] == {"core_hour": 0.0316, "gb_hour": 0.0042, "gb_per_memory_unit": 10.0}
    assert report["totals"]["mem"]["wasted_cost"] == round(1.7 * 10 * 0.0042, 2)
    zero = env() | {"FLEETOPS_RESOURCES_GB_PER_MEMORY_UNIT": "0"}
    refused = run_cli(zero, "resources", "waste", str(trace), "--method", "none")
    assert refused.returncode == EXIT_USAGE
    assert "resources_gb_per_memory_unit" in refused.stderr
