"""The Google 2019 reader (JSON lines and dotted-header CSV) and the plain usage CSV reader."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from fleetops.analytics.resources import traces
from fleetops.analytics.resources.exceptions import TraceError
from fleetops.kit.exitcodes import EXIT_ERROR
from tests.fixtures.server import free_port, run_cli

# The first line of clusterdata_2019_a instance_usage-000000000000.json, as `head -1` prints it in
# rudeigerc's notes on the 2019 trace (rudeigerc.dev, "Borg: the Next Generation"; the
# distribution arrays are cut here, the reader ignores them).
USAGE_LINE = (
    '{"start_time":"1838400000000","end_time":"1838700000000","collection_id":"330587238433",'
    '"instance_index":"111","machine_id":"23624491139","alloc_collection_id":"330587160469",'
    '"alloc_instance_index":"111","collection_type":"0",'
    '"average_usage":{"cpus":0.008392333984375,"memory":0.0094757080078125},'
    '"maximum_usage":{"cpus":0.04791259765625,"memory":0.019378662109375},'
    '"random_sample_usage":{"cpus":0.016632080078125},"assigned_memory":0,'
    '"page_cache_memory":0.0032196044921875,"cycles_per_instruction":0.89924430847167969,'
    '"memory_accesses_per_instruction":0.00151212012860924,"sample_rate":0.996666669845581}'
)
# No genuine instance_events or collection_events row of that instance was found: these are
# written for the test in the export's shape (a SUBMIT then an UPDATE_PENDING that raises the
# request before the window, and one after it that must not apply).
EVENTS = [
    {"time": "0", "type": "0", "collection_id": "330587238433", "instance_index": "111",
     "resource_request": {"cpus": 0.0101, "memory": 0.0159}},
    {"time": "1800000000000", "type": "7", "collection_id": "330587238433",
     "instance_index": "111", "resource_request": {"cpus": 0.0202, "memory": 0.0318}},
    {"time": "1838500000000", "type": "7", "collection_id": "330587238433",
     "instance_index": "111", "resource_request": {"cpus": 0.5, "memory": 0.5}},
]  # fmt: skip
COLLECTIONS = [
    {"time": "0", "type": "0", "collection_id": "330587238433", "user": "user_a",
     "collection_name": "name_a", "collection_logical_name": "logical_a"},
]  # fmt: skip
USAGE_CSV = (
    "start_time,end_time,collection_id,instance_index,machine_id,average_usage.cpus,"
    "average_usage.memory,maximum_usage.cpus,maximum_usage.memory,assigned_memory\n"
    "1838400000000,1838700000000,330587238433,111,23624491139,0.008392333984375,"
    "0.0094757080078125,0.04791259765625,0.019378662109375,0\n"
)
EXPECTED = (
    1838400.0,
    300.0,
    "330587238433",
    "logical_a",
    "user_a",
    "23624491139",
    "330587238433/111",
    0.0202,
    0.0318,
    0.008392333984375,
    0.0094757080078125,
    0.04791259765625,
    0.019378662109375,
)


def jsonl(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def google_dir(directory: Path, usage_name: str, usage_text: str) -> Path:
    directory.mkdir(parents=True)
    with gzip.open(directory / usage_name, "wt") as out:
        out.write(usage_text)
    (directory / "instance_events-000000000000.json").write_text(jsonl(EVENTS))
    (directory / "collection_events-000000000000.json").write_text(jsonl(COLLECTIONS))
    return directory


def usage_row(db: object) -> list[tuple[object, ...]]:
    return db.execute(  # type: ignore[attr-defined, no-any-return]
        "select arrival_s, duration_s, task, task_type, owner, machine, instance, req_cpu, "
        "req_mem, cpu, mem, cpu_peak, mem_peak from tr_usage"
    ).fetchall()


@pytest.mark.parametrize(
    ("usage_name", "usage_text"),
    [
        ("instance_usage-000000000000.json.gz", USAGE_LINE + "\n"),
        ("instance_usage-000000000000.csv.gz", USAGE_CSV),
    ],
)
def test_a_usage_window_gets_the_request_in_force_and_its_collection(
    tmp_path: Path, usage_name: str, usage_text: str
) -> None:
    db = traces.connect()
    (loaded,) = traces.load(db, google_dir(tmp_path / "g", usage_name, usage_text), name="tr")
    assert (loaded.layout, loaded.cpu_unit, loaded.mem_unit) == ("google-2019", "NCU", "normalised")
    assert (loaded.rows, loaded.skipped) == (1, 0)
    assert usage_row(db) == [EXPECTED]


def test_a_window_before_any_request_is_left_out(tmp_path: Path) -> None:
    early = USAGE_LINE.replace('"1838400000000"', '"-1"', 1)
    directory = google_dir(tmp_path / "g", "instance_usage-0.json.gz", USAGE_LINE + "\n" + early)
    with pytest.raises(TraceError, match=r"line 2: start_time '-1': negative"):
        traces.load(traces.connect(), directory, name="tr")
    (directory / "instance_events-000000000000.json").write_text(jsonl(EVENTS[1:]))
    early = USAGE_LINE.replace('"1838400000000","end_time":"1838700000000"', '"60","end_time":"90"')
    directory = google_dir(tmp_path / "h", "instance_usage-0.json.gz", USAGE_LINE + "\n" + early)
    (directory / "instance_events-000000000000.json").write_text(jsonl(EVENTS[1:]))
    (loaded,) = traces.load(traces.connect(), directory, name="tr")
    assert (loaded.rows, loaded.skipped) == (1, 1)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json}", "not JSON"),
        (
            USAGE_LINE.replace('"cpus":0.008392333984375', '"cpus":"lots"'),
            "average_usage.cpus 'lots': not a number",
        ),
        (
            USAGE_LINE.replace('"average_usage":{"cpus":0.008392333984375,', '"average_usage":{'),
            "no average_usage.cpus",
        ),
    ],
)
def test_a_malformed_json_line_names_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    directory = google_dir(
        tmp_path / "g", "instance_usage-0.json.gz", USAGE_LINE + "\n" + text + "\n"
    )
    with pytest.raises(TraceError) as caught:
        traces.load(traces.connect(), directory, name="tr")
    assert str(caught.value).startswith(f"instance_usage-0.json.gz line 2: {problem}")


def test_a_csv_without_a_column_names_it(tmp_path: Path) -> None:
    text = USAGE_CSV.replace("average_usage.memory", "avg_memory")
    directory = google_dir(tmp_path / "g", "instance_usage-0.csv.gz", text)
    with pytest.raises(TraceError) as caught:
        traces.load(traces.connect(), directory, name="tr")
    assert str(caught.value) == "instance_usage-0.csv.gz line 1: no column 'average_usage.memory'"


PLAIN = """\
time,group,duration_s,cpu_request,cpu_used,mem_request,mem_used,cpu_peak,job,owner,note
2024-05-01T12:00:00Z,web,600,2,0.5,4,1.5,1.2,web-1,team-a,x
2024-05-01T12:10:00+02:00,web,600,2,1.5,4,2.5,,web-1,team-a,
1714565400,batch,30,1,0.25,2,0.5,0.9,,,
"""


def test_a_plain_csv_is_read_by_name_with_times_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(PLAIN)
    db = traces.connect()
    (loaded,) = traces.load(db, path, name="tr")
    assert (loaded.layout, loaded.cpu_unit, loaded.mem_unit) == ("usage-csv", "cores", "GiB")
    rows = db.execute(
        "select arrival_s, job, task, task_type, owner, req_cpu, cpu, mem, cpu_peak "
        "from tr_usage order by arrival_s"
    ).fetchall()
    assert rows == [
        (1714558200.0, "web-1", "web|2.0|4.0", "web", "team-a", 2.0, 1.5, 2.5, None),
        (1714564800.0, "web-1", "web|2.0|4.0", "web", "team-a", 2.0, 0.5, 1.5, 1.2),
        (1714565400.0, "batch", "batch|1.0|2.0", "batch", None, 1.0, 0.25, 0.5, 0.9),
    ]
    grouped = db.execute(
        f"select grp, sum(cpu * duration_s) from ({traces.samples(db, trace='tr', key='task')}) "
        "group by grp order by grp"
    ).fetchall()
    assert grouped == [("batch|1.0|2.0", 7.5), ("web|2.0|4.0", 1200.0)]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("mem_used,cpu_peak", "mem_usd,cpu_peak", "line 1: no column 'mem_used'"),
        ("1714565400,", "yesterday,", "line 4: time 'yesterday': not ISO 8601 or epoch seconds"),
        ("web,600,2,1.5", "web,-600,2,1.5", "line 3: duration_s '-600': negative"),
        (",team-a,\n", ",team-a\n", "line 3: 10 fields, expected 11"),
    ],
)
def test_a_malformed_plain_csv_names_file_and_line(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(PLAIN.replace(old, new))
    with pytest.raises(TraceError) as caught:
        traces.load(traces.connect(), path, name="tr")
    assert str(caught.value) == f"usage.csv {problem}"


def test_sources_of_different_units_are_not_mixed(tmp_path: Path) -> None:
    directory = google_dir(tmp_path / "g", "instance_usage-0.json.gz", USAGE_LINE + "\n")
    (directory / "usage.csv").write_text(PLAIN)
    with pytest.raises(TraceError, match=r"CPU in cores and memory GiB, but .* has CPU in NCU"):
        traces.load(traces.connect(), directory, name="tr")


def test_the_usage_command_summarises_any_source_and_fails_in_one_line(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    path = tmp_path / "usage.csv"
    path.write_text(PLAIN)
    result = run_cli(environment, "resources", "usage", str(path), "-o", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["layout"] for s in report["sources"]] == ["usage-csv"]
    web = next(g for g in report["groups"] if g["grp"] == "web|2.0|4.0")
    # 600 s at 0.5 and 600 s at 1.5 cores of a 2-core request
    assert (web["rows"], web["cpu"], web["cpu_share"], web["mem"]) == (2, 1.0, 0.5, 2.0)
    path.write_text(PLAIN.replace("1714565400,", "yesterday,"))
    bad = run_cli(environment, "resources", "usage", str(path))
    assert bad.returncode == EXIT_ERROR
    assert bad.stderr.strip().splitlines() == [
        "error: usage.csv line 4: time 'yesterday': not ISO 8601 or epoch seconds"
    ]
    url = f"http://127.0.0.1:{free_port()}"
    down = run_cli(environment, "resources", "usage", "--prometheus", url, "--start",
                   "2024-05-01T00:00:00Z", "--end", "2024-05-01T01:00:00Z")  # fmt: skip
    assert down.returncode == EXIT_ERROR
    assert "cannot connect" in down.stderr
