"""Trace readers on real rows of the Alibaba 2018 sample, and malformed rows named by line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from fleetops.analytics.resources import traces
from fleetops.analytics.resources.exceptions import TraceError, TraceNotFound

# The first job of batch_tasks_0-1200s.csv.gz, and the instances of its task R23_22.
TASKS = """\
0,j_1446403,R23_22,268,50.0,0.3,9
0,j_1446403,R11_10,326,50.0,0.3,9
0,j_1446403,R7_21,227,50.0,0.3,15
0,j_1446403,J25_16_18_24,382,50.0,0.39,9
0,j_1446403,J27_6_8_26,543,50.0,0.49,15
"""
INSTANCES = """\
0,j_1446403,R23_22,ins_1160855625,28,99.0,0.1
0,j_1446403,R23_22,ins_1160855936,27,105.0,0.1
0,j_1446403,R23_22,ins_1160855866,26,105.0,0.11
0,j_1446403,R23_22,ins_1160855711,24,113.0,0.1
0,j_1446403,R23_22,ins_1160855369,29,98.0,0.1
0,j_1446403,R23_22,ins_1160855786,28,101.0,0.1
"""


def write_trace(directory: Path, tasks: str, instances: str, *, gz: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("batch_tasks", tasks), ("batch_instances", instances)):
        if gz:
            with gzip.open(directory / f"{name}_x.csv.gz", "wt") as out:
                out.write(text)
        else:
            (directory / f"{name}_x.csv").write_text(text)
    return directory


def test_real_rows_are_read_and_joined(tmp_path: Path) -> None:
    db = traces.connect()
    (loaded,) = traces.load(db, write_trace(tmp_path / "t", TASKS, INSTANCES), name="tr")
    assert (loaded.layout, loaded.rows, loaded.skipped) == ("alibaba-batch-sample", 6, 0)
    assert (loaded.cpu_unit, loaded.mem_unit) == ("cores", "normalised")
    rows = db.execute(
        f"select grp, count(*), max(cpu), sum(duration_s), any_value(req_mem) "
        f"from ({traces.samples(db, trace='tr', key='task')}) group by grp"
    ).fetchall()
    assert rows == [("R|0.5|0.3", 6, 1.13, 162.0, 0.3)]  # CPU in cores, the request too
    job = db.execute(f"select distinct grp from ({traces.samples(db, trace='tr', key='job')})")
    assert job.fetchall() == [("j_1446403/R23_22",)]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("0,j_1,M1,ins_1,28,99.0", "6 fields, expected 7"),
        ("0,j_1,M1,ins_1,28,lots,0.1", "cpu_avg 'lots': not a number"),
        ("0,j_1,M1,ins_1,-3,99.0,0.1", "duration_s '-3': negative"),
    ],
)
def test_a_malformed_row_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    directory = write_trace(tmp_path / "t", TASKS, INSTANCES + line + "\n", gz=False)
    with pytest.raises(TraceError) as caught:
        traces.load(traces.connect(), directory, name="tr")
    assert str(caught.value) == f"batch_instances_x.csv line 7: {problem}"


def test_a_directory_without_traces_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(TraceNotFound, match="no batch_tasks"):
        traces.find_files(tmp_path)


def test_the_split_puts_earlier_arrivals_in_training() -> None:
    assert traces.period(split_at=600.0, part="train") == "arrival_s < 600.0"
    assert traces.period(split_at=600.0, part="test") == "arrival_s >= 600.0"
    assert traces.period(split_at=None, part="test") == "true"
