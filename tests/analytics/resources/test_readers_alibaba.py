"""The Alibaba 2018 readers: original batch and container files, layout detection, bad rows."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pytest

from fleetops.analytics.resources import traces
from fleetops.analytics.resources.exceptions import TraceError, TraceNotFound

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "traces" / "alibaba2018"

# An instance row of cluster-trace-v2018 batch_instance.csv, field by field as quoted in a public
# conversion script's docstring (`process_cluster_trace_v2018.py`: ins_74901673, j_217, 10,
# Terminated, 673795, 673797, m_2637, 1, 1, 13, 16, 0.02, 0.02), whose task name it cuts to
# "task_LTg..."; the name is kept as cut. Its batch_task.csv row is written for this test (the
# instance's task, 1 instance, plan_cpu 50 and plan_mem 0.3 chosen).
ORIGINAL_TASK = "task_LTg,1,j_217,10,Terminated,673795,673797,50,0.3\n"
ORIGINAL_INSTANCE = (
    "ins_74901673,task_LTg,j_217,10,Terminated,673795,673797,m_2637,1,1,13,16,0.02,0.02\n"
)
# The genuine values of the reformatted sample (test_traces: job j_1446403, task R23_22, its first
# three instances) put in the original layout: start = arrival, end = arrival + duration; task
# type, status, machine, sequence numbers and peaks are written for this test.
SAMPLE_AS_ORIGINAL_TASK = "R23_22,9,j_1446403,1,Terminated,0,268,50.0,0.3\n"
SAMPLE_AS_ORIGINAL_INSTANCES = """\
ins_1160855625,R23_22,j_1446403,1,Terminated,1,29,m_1,1,1,99.0,120.0,0.1,0.12
ins_1160855936,R23_22,j_1446403,1,Terminated,1,28,m_1,1,1,105.0,130.0,0.1,0.12
ins_1160855866,R23_22,j_1446403,1,Terminated,1,27,m_2,1,1,105.0,110.0,0.11,0.13
ins_1160855999,R23_22,j_1446403,1,Failed,1,0,m_2,1,1,,,,
"""
# container_usage.csv rows of one container, as quoted by packagewjx/workload-classifier
# (internal/alitrace/datasource_test.go).
CONTAINER_USAGE = """\
c_10133,m_470,166760,5,67,,,,0.03,0.03,6
c_10133,m_470,167160,6,67,,,,0.03,0.03,7
c_10133,m_470,167210,6,67,,,,0.03,0.03,7
c_10133,m_470,167220,5,67,,,,0.03,0.03,8
c_10133,m_470,167620,5,66,,,,0.03,0.03,7
c_10133,m_470,167700,5,66,,,,0.03,0.03,7
c_10133,m_470,167900,7,67,,,,0.03,0.03,6
c_10133,m_470,169230,7,66,,,,0.03,0.03,7
c_10133,m_470,169650,7,67,,,,0.03,0.03,6
c_10133,m_470,169950,7,66,,,,0.03,0.03,7
"""
# container_meta.csv rows of c_1 on m_2556 (app_5052, request 400 = 4 cores, mem_size 1.56), as
# quoted by the same project (internal/alitrace/containermeta_test.go); the container and machine
# ids are changed to the usage rows' so that the two join.
CONTAINER_META = """\
c_10133,m_470,0,app_5052,started,400,400,1.56
c_10133,m_470,287942,app_5052,started,400,400,1.56
c_10133,m_470,338909,app_5052,started,400,400,1.56
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        if name.endswith(".gz"):
            with gzip.open(directory / name, "wt") as out:
                out.write(text)
        else:
            (directory / name).write_text(text)
    return directory


def usage(db: object, name: str = "tr") -> list[tuple[object, ...]]:
    return db.execute(  # type: ignore[attr-defined, no-any-return]
        "select arrival_s, duration_s, job, task, task_type, machine, instance, req_cpu, req_mem, "
        f"cpu, mem, cpu_peak, mem_peak from {name}_usage order by instance"
    ).fetchall()


def test_the_original_batch_files_are_told_from_the_sample_by_their_field_count(
    tmp_path: Path,
) -> None:
    directory = write(
        tmp_path / "t",
        {"batch_task.csv": ORIGINAL_TASK, "batch_instance.csv": ORIGINAL_INSTANCE},
    )
    db = traces.connect()
    (loaded,) = traces.load(db, directory, name="tr")
    assert (loaded.layout, loaded.rows, loaded.skipped) == ("alibaba-batch", 1, 0)
    assert (loaded.cpu_unit, loaded.mem_unit) == ("cores", "normalised")
    assert usage(db) == [
        (
            673795.0,
            2.0,
            "j_217",
            "j_217/task_LTg",
            "task",
            "m_2637",
            "j_217/task_LTg/ins_74901673",
            0.5,
            0.3,
            0.13,
            0.02,
            0.16,
            0.02,
        )
    ]


def test_the_same_instances_give_the_same_samples_in_both_batch_layouts(tmp_path: Path) -> None:
    sample_instances = "".join(
        f"0,j_1446403,R23_22,{line}\n"
        for line in (
            "ins_1160855625,28,99.0,0.1",
            "ins_1160855936,27,105.0,0.1",
            "ins_1160855866,26,105.0,0.11",
        )
    )
    sample = write(
        tmp_path / "sample",
        {
            "batch_tasks_x.csv": "0,j_1446403,R23_22,268,50.0,0.3,9\n",
            "batch_instances_x.csv": sample_instances,
        },
    )
    original = write(
        tmp_path / "original",
        {
            "batch_task.csv": SAMPLE_AS_ORIGINAL_TASK,
            "batch_instance.csv": SAMPLE_AS_ORIGINAL_INSTANCES,
        },
    )
    db = traces.connect()
    (from_sample,) = traces.load(db, sample, name="a")
    (from_original,) = traces.load(db, original, name="b")
    assert from_sample.layout == "alibaba-batch-sample"
    # the failed instance (end 0, no usage) is left out and counted
    assert (from_original.rows, from_original.skipped) == (3, 1)
    for key in traces.KEYS:
        query = "select grp, task, duration_s, cpu, mem, req_cpu, req_mem from ({}) order by all"
        a = db.execute(query.format(traces.samples(db, trace="a", key=key))).fetchall()
        b = db.execute(query.format(traces.samples(db, trace="b", key=key))).fetchall()
        assert a == b
        assert len(a) == 3


def test_container_samples_last_until_the_next_capped_and_use_the_request_in_force(
    tmp_path: Path,
) -> None:
    directory = write(
        tmp_path / "t",
        {"container_meta.csv": CONTAINER_META, "container_usage.csv.gz": CONTAINER_USAGE},
    )
    db = traces.connect()
    (loaded,) = traces.load(db, directory, name="tr")
    rows = [line.split(",") for line in CONTAINER_USAGE.splitlines()]
    times = [float(r[2]) for r in rows]
    durations = [min(b - a, 300.0) for a, b in itertools.pairwise(times)]
    assert (loaded.layout, loaded.rows, loaded.skipped) == ("alibaba-containers", 9, 1)
    got = db.execute(
        "select sum(duration_s), sum(cpu * duration_s), sum(mem * duration_s), "
        "min(req_cpu), max(req_cpu), min(req_mem), any_value(task_type) from tr_usage"
    ).fetchone()
    assert got is not None
    expected_cpu = sum(int(r[3]) / 100 * 4 * d for r, d in zip(rows, durations, strict=False))
    expected_mem = sum(int(r[4]) / 100 * 1.56 * d for r, d in zip(rows, durations, strict=False))
    assert got[0] == sum(durations) == 1840.0  # gaps of 400, 1330 and 420 s count as 300
    assert got[1] == pytest.approx(expected_cpu)
    assert got[2] == pytest.approx(expected_mem)
    assert got[3:] == (4.0, 4.0, 1.56, "app_5052")


def test_the_documented_invalid_utilisations_are_left_out(tmp_path: Path) -> None:
    broken = CONTAINER_USAGE.replace("167210,6,67", "167210,-1,67").replace(
        "167700,5,66", "167700,5,101"
    )
    directory = write(
        tmp_path / "t", {"container_meta.csv": CONTAINER_META, "container_usage.csv": broken}
    )
    (loaded,) = traces.load(traces.connect(), directory, name="tr")
    assert (loaded.rows, loaded.skipped) == (7, 3)


def test_usage_without_a_request_is_no_usage_at_all(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "t",
        {
            "container_meta.csv": CONTAINER_META.replace("c_10133", "c_1"),
            "container_usage.csv": CONTAINER_USAGE,
        },
    )
    with pytest.raises(TraceError, match=r"no usage row \(10 rows left out: each container"):
        traces.load(traces.connect(), directory, name="tr")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "ins_2,task_LTg,j_217,10,Terminated,1,5,m_1,1,1,x,16,0.02,0.02",
            "cpu_avg 'x': not a number",
        ),
        ("ins_2,task_LTg,j_217,10,Terminated,1,5,m_1,1,1,13,16,0.02", "13 fields, expected 14"),
        (
            "ins_2,task_LTg,j_217,10,Terminated,1,5,m_1,1,1,13,16,-0.02,0.1",
            "mem_avg '-0.02': negative",
        ),
        (",task_LTg,j_217,10,Terminated,1,5,m_1,1,1,13,16,0.02,0.02", "instance_name '': empty"),
    ],
)
def test_a_malformed_original_row_names_file_and_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    directory = write(
        tmp_path / "t",
        {
            "batch_task.csv": ORIGINAL_TASK,
            "batch_instance.csv": ORIGINAL_INSTANCE * 6 + line + "\n",
        },
    )
    with pytest.raises(TraceError) as caught:
        traces.load(traces.connect(), directory, name="tr")
    assert str(caught.value) == f"batch_instance.csv line 7: {problem}"


def test_one_directory_holds_one_batch_layout(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "t",
        {
            "batch_task.csv": ORIGINAL_TASK,
            "batch_instance.csv": ORIGINAL_INSTANCE,
            "batch_tasks_x.csv": "0,j_1,R1,268,50.0,0.3,9\n",
        },
    )
    with pytest.raises(TraceError, match="mixes the reformatted sample"):
        traces.load(traces.connect(), directory, name="tr")


def test_a_family_with_one_kind_of_file_says_which_is_missing(tmp_path: Path) -> None:
    directory = write(tmp_path / "t", {"batch_task.csv": ORIGINAL_TASK})
    with pytest.raises(TraceNotFound, match=r"no batch_instance\* file beside batch_task.csv"):
        traces.load(traces.connect(), directory, name="tr")


def test_a_directory_of_no_known_layout_is_not_found(tmp_path: Path) -> None:
    directory = write(tmp_path / "t", {"machine_meta.csv": "m_1,0,1,2,96,100,USING\n"})
    with pytest.raises(TraceNotFound, match="no usage files; expected batch_task"):
        traces.load(traces.connect(), directory, name="tr")


def test_the_shared_sample_loads_every_instance_and_ignores_the_machine_files() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} absent: the shared datasets are not here")
    db = traces.connect()
    (loaded,) = traces.load(db, SHARED, name="tr")
    with gzip.open(SHARED / "batch_instances_0-1200s.csv.gz", "rt") as lines:
        instances = sum(1 for _ in lines)
    assert loaded.layout == "alibaba-batch-sample"
    assert loaded.rows + loaded.skipped == instances
    assert loaded.rows > 0.99 * instances
