"""Machine files read strictly, failure-domain utilisation and the transfer list worked out by
hand, the real sample against Python's csv module, and `fleetops resources imbalance`."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from fleetops.analytics.resources import imbalance, machines, traces
from fleetops.analytics.resources.exceptions import TraceError, TraceNotFound
from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from tests.analytics.resources.test_evaluate import SAMPLE, env
from tests.fixtures.server import run_cli

# Domains A (m1, m2: 10 cores each), B (m3: 20), C (m4, m5: 10 each), D (m6: 30, no usage),
# E (m7: 10). m5's latest row leaves failure_domain_2 empty: its earlier "z" stands.
META = """\
m1,0,A,x,10,100,USING
m2,0,A,x,10,100,USING
m3,0,B,y,20,100,USING
m4,0,C,y,10,100,USING
m5,0,C,z,10,100,USING
m5,100,C,,10,100,USING
m6,0,D,y,30,100,USING
m7,0,E,x,10,100,USING
"""
# In 100 s buckets: m1 averages (80 + 60) / 2 = 70 then 90; m2 30 then nothing; m3 20, 40;
# m4 10, 10; m7 60, 60. Memory 50 throughout.
USAGE = """\
m1,0,80,50,,,1,1,1
m1,50,60,50,,,1,1,1
m1,100,90,50,,,1,1,1
m2,0,30,50,,,1,1,1
m3,0,20,50,,,1,1,1
m3,100,40,50,,,1,1,1
m4,0,10,50,,,1,1,1
m4,100,10,50,,,1,1,1
m7,0,60,50,,,1,1,1
m7,100,60,50,,,1,1,1
"""


def write_machines(directory: Path, meta: str = META, usage: str = USAGE) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "machine_meta.csv").write_text(meta)
    (directory / "machine_usage.csv").write_text(usage)
    return directory


def test_utilisation_spread_and_transfers_worked_out_by_hand(tmp_path: Path) -> None:
    report = imbalance.report(write_machines(tmp_path / "m"), bucket_s=100)
    by_domain = {d["domain"]: d for d in report["domains"]}
    # A: bucket 0 (70 x 10 + 30 x 10) / 20 = 50, bucket 1 only m1: 90; mean 70, p95 50 + 0.95 x 40
    a = by_domain["A"]
    assert (a["cpu_mean"], a["cpu_p95"], a["mem_mean"]) == (70.0, 88.0, 50.0)
    assert (by_domain["B"]["cpu_mean"], by_domain["C"]["cpu_mean"]) == (30.0, 10.0)
    # C has 2 machines, 20 cores, one of them measured
    c = by_domain["C"]
    assert (c["machines"], c["machines_with_usage"], c["cores"], c["cores_with_usage"]) == (
        2,
        1,
        20,
        10,
    )
    assert by_domain["D"]["machines_with_usage"] == 0
    assert by_domain["D"]["cpu_mean"] is None
    # loads: A 0.7 x 20 = 14, B 0.3 x 20 = 6, C 0.1 x 10 = 1, E 0.6 x 10 = 6: 27 cores of 60,
    # a fleet mean of 45 %. Excess: A 14 - 9 = 5, E 6 - 4.5 = 1.5, B 6 - 9 = -3, C 1 - 4.5 = -3.5
    assert report["fleet"]["cpu_mean"] == 45.0
    assert {d: by_domain[d]["excess_cores"] for d in "ABCE"} == {
        "A": 5.0,
        "B": -3.0,
        "C": -3.5,
        "E": 1.5,
    }
    # the most loaded gives first to the least loaded: A fills C (3.5), then gives B its last
    # 1.5; E (next most loaded) gives B the remaining 1.5
    assert report["transfers"] == [
        {"from": "A", "to": "C", "cores": 3.5},
        {"from": "A", "to": "B", "cores": 1.5},
        {"from": "E", "to": "B", "cores": 1.5},
    ]
    # spread of the means 70, 30, 10, 60: population standard deviation sqrt(2275 / 4)
    assert report["spread"]["cpu"] == {
        "max": 70.0,
        "min": 10.0,
        "range": 60.0,
        "stdev": round((2275 / 4) ** 0.5, 2),
        "most_loaded": "A",
        "least_loaded": "C",
    }
    fleet = report["fleet"]
    assert (fleet["machines"], fleet["machines_with_usage"], fleet["domains"]) == (7, 5, 5)
    assert fleet["usage"]["machines_without_meta"] == 0


def test_a_machine_takes_its_latest_named_domain(tmp_path: Path) -> None:
    report = imbalance.report(write_machines(tmp_path / "m"), level="failure_domain_2")
    counts = {d["domain"]: d["machines"] for d in report["domains"]}
    assert counts == {"x": 3, "y": 3, "z": 1}


def test_usage_of_a_machine_without_meta_is_counted_apart(tmp_path: Path) -> None:
    directory = write_machines(tmp_path / "m", usage=USAGE + "m9,0,99,50,,,1,1,1\n")
    report = imbalance.report(directory, bucket_s=100)
    assert report["fleet"]["usage"]["machines_without_meta"] == 1
    assert report["fleet"]["cpu_mean"] == 45.0  # m9 is not in any domain


@pytest.mark.parametrize(
    ("kind", "line", "problem"),
    [
        ("meta", ",0,A,x,10,100,USING", "machine_id '': empty"),
        ("meta", "m8,0,A,x,ten,100,USING", "cpu_num 'ten': not an integer"),
        ("usage", "m1,200,150,50,,,1,1,1", "cpu_util_percent '150': above 100"),
        ("usage", "m1,200,50,50,,,1,1", "8 fields, expected 9"),
        ("usage", "m1,-5,50,50,,,1,1,1", "time_stamp '-5': below 0"),
    ],
)
def test_a_malformed_row_names_file_and_line(
    tmp_path: Path, kind: str, line: str, problem: str
) -> None:
    files = {"meta": META, "usage": USAGE} | {kind: (META if kind == "meta" else USAGE) + line}
    directory = write_machines(tmp_path / "m", files["meta"], files["usage"])
    number = len(files[kind].splitlines())
    with pytest.raises(TraceError) as caught:
        machines.load(traces.connect(), directory, name="f")
    assert str(caught.value) == f"machine_{kind}.csv line {number}: {problem}"


def test_a_directory_without_machine_files_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(TraceNotFound, match="no machine_meta"):
        machines.find_files(tmp_path)


def independent_counts(level: int) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
    """Per domain of the sample: machines, machines with usage, and for domains with one
    measured machine its mean CPU over 300 s buckets, by Python's csv module."""
    domain: dict[str, str] = {}
    with (SAMPLE / "machine_meta.csv").open(newline="") as meta:
        for row in sorted(csv.reader(meta), key=lambda r: int(r[1])):
            if row[2 + level]:
                domain[row[0]] = row[2 + level]
    machines_of: dict[str, int] = defaultdict(int)
    for name in domain.values():
        machines_of[name] += 1
    buckets: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    with (SAMPLE / "machine_usage.csv").open(newline="") as usage:
        for row in csv.reader(usage):
            buckets[row[0]][int(row[1]) // 300].append(float(row[2]))
    measured: dict[str, int] = defaultdict(int)
    for machine in buckets:
        measured[domain[machine]] += 1
    means = {
        domain[m]: sum(sum(v) / len(v) for v in b.values()) / len(b)
        for m, b in buckets.items()
        if measured[domain[m]] == 1
    }
    return dict(machines_of), dict(measured), means


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"{SAMPLE} (the shared data) is absent")
def test_the_sample_as_python_counts_it() -> None:
    result = run_cli(env(), "resources", "imbalance", str(SAMPLE), "--level", "failure_domain_2",
                     "-o", "json")  # fmt: skip
    assert result.returncode == EXIT_OK, result.stderr
    report = json.loads(result.stdout)
    machines_of, measured, means = independent_counts(level=1)
    domains = {d["domain"]: d for d in report["domains"]}
    assert {name: d["machines"] for name, d in domains.items()} == machines_of
    assert {
        n: d["machines_with_usage"] for n, d in domains.items() if d["machines_with_usage"]
    } == (measured)
    for name, mean in means.items():
        assert domains[name]["cpu_mean"] == pytest.approx(mean, abs=0.006)
    assert report["fleet"]["machines"] == 4034
    assert report["fleet"]["machines_with_usage"] == 16
    # what moves adds up to what the loaded domains hold above the mean
    given = sum(d["excess_cores"] for d in report["domains"] if (d["excess_cores"] or 0) > 0)
    assert sum(t["cores"] for t in report["transfers"]) == pytest.approx(given, abs=0.1)


def test_the_table_and_the_errors(tmp_path: Path) -> None:
    directory = write_machines(tmp_path / "m")
    result = run_cli(env(), "resources", "imbalance", str(directory), "--bucket", "100")
    assert result.returncode == EXIT_OK, result.stderr
    assert "without usage samples: 1 domain(s) of 1 machine(s)" in result.stdout
    assert "3.5" in result.stdout  # A -> C
    bad = write_machines(tmp_path / "bad", usage=USAGE + "m1,200,x,50,,,1,1,1\n")
    result = run_cli(env(), "resources", "imbalance", str(bad))
    assert result.returncode == EXIT_ERROR
    assert "machine_usage.csv line 11: cpu_util_percent 'x': not a number" in result.stderr
    missing = run_cli(env(), "resources", "imbalance", str(tmp_path / "nowhere"))
    assert missing.returncode == EXIT_NOT_FOUND
    for option, value in (("--level", "rack"), ("--bucket", "0")):
        refused = run_cli(env(), "resources", "imbalance", str(directory), option, value)
        assert refused.returncode == EXIT_USAGE, refused.stderr
        assert option in refused.stderr
