"""Workflows: the shipped examples, parse and check errors with paths and lines, batch planning."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetops.changes.operations import OperationLibrary, SpecError, load_library
from fleetops.changes.workflows import (
    Percent,
    PlanHost,
    Strategy,
    WorkflowSpec,
    check_workflow,
    failure_threshold,
    parse_workflow,
    plan_batches,
)

EXAMPLES = Path(__file__).parents[2] / "src" / "fleetops" / "changes" / "library" / "workflows"

BASE = """\
name: rolling-restart
version: 3
description: Restart a service across a cluster, rack-aware.
params:
  service: {type: string, required: true}
stages:
  - name: first
    steps:
      - operation: wait
        params: {seconds: 1}
  - name: restart
    steps: [{operation: service_restart, params: {service: "{{ params.service }}"}}]
    strategy:
      batch: 25%
      canary: 1
      pause_between: 30s
      max_failures: 1
      on_failure: pause
      on_abort: rollback
      spread_by: rack
    when: on_success
"""


@pytest.fixture(scope="module")
def library() -> OperationLibrary:
    return load_library()


def errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_workflow(text, source="wf.yaml")
    return [str(issue) for issue in info.value.issues]


# --- the shipped examples -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rolling-restart", "os-patch"])
def test_shipped_workflows_parse_and_check(name: str, library: OperationLibrary) -> None:
    spec = parse_workflow((EXAMPLES / f"{name}.yaml").read_text(), source=f"{name}.yaml")
    assert spec.name == name
    assert check_workflow(spec, library) == []
    assert all(stage.strategy.spread_by == "rack" for stage in spec.stages)


def test_os_patch_runs_the_documented_steps() -> None:
    spec = parse_workflow((EXAMPLES / "os-patch.yaml").read_text())
    (stage,) = spec.stages
    assert [step.operation for step in stage.steps] == [
        "drain_host", "shell", "reboot", "http_check", "undrain_host",
    ]  # fmt: skip
    assert "apt-get" in stage.steps[1].params["command"]
    assert stage.strategy.batch == Percent(5)
    assert stage.strategy.max_failures == Percent(2)
    assert stage.strategy.pause_between == 300.0


def test_parsed_values() -> None:
    spec = parse_workflow(BASE)
    strategy = spec.stages[1].strategy
    assert (strategy.batch, strategy.canary, strategy.pause_between) == (Percent(25), 1, 30.0)
    assert (strategy.on_failure, strategy.on_abort, strategy.spread_by) == (
        "pause", "rollback", "rack",
    )  # fmt: skip
    assert spec.stages[0].strategy == Strategy()  # defaults: one host at a time, no spreading
    assert spec.stages[0].strategy.batch_size(40) == 1
    with pytest.raises(ValueError, match="1% to 100%"):
        Strategy(batch=Percent(0))
    assert strategy.batch_size(40) == 10
    assert strategy.batch_size(3) == 1


def test_a_spec_round_trips_through_its_json_form() -> None:
    spec = parse_workflow(BASE)
    dumped = spec.model_dump(mode="json")
    assert dumped["stages"][1]["strategy"]["batch"] == "25%"
    assert parse_workflow(yaml.safe_dump(dumped)) == spec
    assert "properties" in WorkflowSpec.model_json_schema()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1h30m", 5400.0), ("1.5m", 90.0),
     ("250ms", 0.25), ("0", 0.0), ("2.5", 2.5), ("manual", "manual")],
)  # fmt: skip
def test_pause_durations(text: str, seconds: float | str) -> None:
    spec = parse_workflow(BASE.replace("pause_between: 30s", f"pause_between: {text}"))
    assert spec.stages[1].strategy.pause_between == seconds


# --- what parse_workflow refuses ----------------------------------------------------------------

PERCENT = "expected an integer or a percentage like '25%'"
INVALID = [
    ("batch: 25%", "batch: 25 percent",
     f"stages[1].strategy.batch: {PERCENT}, got '25 percent' (line 14)"),
    ("batch: 25%", "batch: 0", "stages[1].strategy.batch: must be at least 1, got 0 (line 14)"),
    ("batch: 25%", "batch: 0%",
     "stages[1].strategy.batch: a percentage must be 1% to 100%, got '0%' (line 14)"),
    ("batch: 25%", "batch: 101%",
     "stages[1].strategy.batch: a percentage must be 1% to 100%, got '101%' (line 14)"),
    ("batch: 25%", "batch: yes",
     f"stages[1].strategy.batch: {PERCENT}, got boolean True (line 14)"),
    ("batch: 25%", "batch: '10'", f"stages[1].strategy.batch: {PERCENT}, got '10' (line 14)"),
    ("canary: 1", "canary: -1", "stages[1].strategy.canary: must be at least 0, got -1 (line 15)"),
    ("canary: 1", "canary: '1'",
     "stages[1].strategy.canary: expected integer, got string '1' (line 15)"),
    ("pause_between: 30s", "pause_between: 30 seconds",
     "stages[1].strategy.pause_between: expected a duration like '30s', '5m' or '1h', "
     "got '30 seconds' (line 16)"),
    ("pause_between: 30s", "pause_between: -5",
     "stages[1].strategy.pause_between: expected a duration like '30s', '5m' or '1h', "
     "got integer -5 (line 16)"),
    ("max_failures: 1", "max_failures: -1",
     "stages[1].strategy.max_failures: must be at least 0, got -1 (line 17)"),
    ("max_failures: 1", "max_failures: 150%",
     "stages[1].strategy.max_failures: a percentage must be 0% to 100%, got '150%' (line 17)"),
    ("on_failure: pause", "on_failure: stop",
     "stages[1].strategy.on_failure: unknown on_failure 'stop' (expected one of pause, abort) "
     "(line 18)"),
    ("on_abort: rollback", "on_abort: undo",
     "stages[1].strategy.on_abort: unknown on_abort 'undo' (expected one of rollback, stop) "
     "(line 19)"),
    ("spread_by: rack", "spread_by: row",
     "stages[1].strategy.spread_by: unknown spread_by 'row' (expected one of none, rack, "
     "cluster, datacenter) (line 20)"),
    ("spread_by: rack", "spread: rack", "stages[1].strategy.spread: unknown field (line 20)"),
    ("spread_by: rack", "concurrency: 0",
     "stages[1].strategy.concurrency: must be at least 1, got 0 (line 20)"),
    ("when: on_success", "when: sometimes",
     "stages[1].when: unknown when 'sometimes' (expected one of on_success, always) (line 21)"),
    ("name: rolling-restart", "name: Rolling_Restart",
     "name: invalid value 'Rolling_Restart' (expected to match ^[a-z][a-z0-9-]{1,63}$) (line 1)"),
    ("version: 3\n", "", "version: required (line 1)"),
    ("{type: string, required: true}", "{type: text}",
     "params.service.type: unknown type 'text' (expected one of string, integer, number, "
     "boolean, list, object) (line 5)"),
    ("      - operation: wait", "      - operaton: wait",
     "stages[0].steps[0].operaton: unknown field (line 9)"),
    ("      - operation: wait", "      - operation: Wait",
     "stages[0].steps[0].operation: invalid value 'Wait' (expected to match "
     "^[a-z][a-z0-9_]{1,63}$) (line 9)"),
    ("  - name: restart\n", "  - name: restart\n    targets: 'rack='\n",
     "stages[1].targets: selector error at column 6: expected a value after '=', found end of "
     "selector (line 12)"),
    ("steps: [{operation", "steps: []\n    x: [{operation",
     "stages[1].steps: must not be empty (line 12)"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "expected"), INVALID)
def test_invalid_workflows(old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert f"wf.yaml: {expected}" in errors(BASE.replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("name: first", "name: restart",
         "stages[1].name: duplicate stage name 'restart' (also stages[0]) (line 11)"),
        ("{{ params.service }}", "{{ params.servce }}",
         "stages[1].steps[0].params.service: unknown workflow param 'servce' (declared: service) "
         "(line 12)"),
        ("{{ params.service }}", "{{ service }}",
         "stages[1].steps[0].params.service: undefined variable 'service' (a step can use "
         "params, host and change) (line 12)"),
        ("{{ params.service }}", "{{ params.service }",
         "stages[1].steps[0].params.service: template syntax: unexpected '}' at line 1 (line 12)"),
    ],
)  # fmt: skip
def test_template_and_structure_errors_from_the_text(old: str, new: str, expected: str) -> None:
    assert errors(BASE.replace(old, new)) == [f"wf.yaml: {expected}"]


def test_every_problem_is_reported_at_once() -> None:
    text = BASE.replace("batch: 25%", "batch: lots").replace("when: on_success", "when: never")
    assert [e.split(":")[1].strip() for e in errors(text)] == [
        "stages[1].strategy.batch",
        "stages[1].when",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n", "wf.yaml: expected a workflow (a mapping), got list (line 1)"),
        ("", "wf.yaml: expected a workflow (a mapping), got null"),
        ("name: [x\n", "wf.yaml: invalid YAML"),
        ("name: a\nname: b\n", "wf.yaml: name: duplicate key (line 2)"),
    ],
)
def test_not_a_workflow(text: str, expected: str) -> None:
    assert errors(text)[0].startswith(expected)


# --- what check_workflow adds with the library --------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("operation: wait", "operation: wiat",
         "stages[0].steps[0].operation: unknown operation 'wiat' (did you mean 'wait'?) (line 9)"),
        ("operation: wait", "operation: wait\n        version: 7",
         "stages[0].steps[0].version: operation 'wait' has no version 7 (available: 1) (line 10)"),
        ("{seconds: 1}", "{seconds: '1'}",
         "stages[0].steps[0].params.seconds: expected number, got string '1' (line 10)"),
        ("{seconds: 1}", "{}", "stages[0].steps[0].params.seconds: required (line 10)"),
        ("{seconds: 1}", "{seconds: 1, minutes: 2}",
         "stages[0].steps[0].params.minutes: unknown parameter (expected one of seconds) "
         "(line 10)"),
        ("{service: \"{{ params.service }}\"}", "{service: 'bad service'}",
         "stages[1].steps[0].params.service: 'bad service' does not match pattern "
         "'[A-Za-z0-9@_][A-Za-z0-9@._:-]*' (line 12)"),
    ],
)  # fmt: skip
def test_library_checks(old: str, new: str, expected: str, library: OperationLibrary) -> None:
    spec = parse_workflow(BASE.replace(old, new), source="wf.yaml")
    assert [str(i) for i in check_workflow(spec, library)] == [f"wf.yaml: {expected}"]


def test_templated_step_params_are_left_for_run_time(library: OperationLibrary) -> None:
    text = BASE.replace("{seconds: 1}", "{seconds: '{{ params.service }}'}")
    assert check_workflow(parse_workflow(text), library) == []


def test_a_spec_built_in_code_is_checked_without_lines(library: OperationLibrary) -> None:
    spec = WorkflowSpec.model_validate(
        {"name": "w-1", "version": 1, "description": "d",
         "stages": [{"name": "s", "steps": [{"operation": "nope"}]},
                    {"name": "s", "steps": [{"operation": "wait", "params": {"seconds": 1}}]}]}
    )  # fmt: skip
    assert [str(i) for i in check_workflow(spec, library)] == [
        "stages[1].name: duplicate stage name 's' (also stages[0])",
        "stages[0].steps[0].operation: unknown operation 'nope'",
    ]


# --- failure threshold --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_failures", "hosts", "threshold"),
    [(0, 10, 1), (1, 10, 1), (3, 10, 3), (5, 2, 5), (Percent(10), 40, 4), (Percent(25), 10, 2),
     (Percent(10), 5, 1), (Percent(0), 100, 1), (Percent(100), 7, 7), (Percent(50), 0, 1)],
)  # fmt: skip
def test_failure_threshold(max_failures: int | Percent, hosts: int, threshold: int) -> None:
    assert failure_threshold(max_failures, hosts) == threshold


# --- batch planning: concrete examples ----------------------------------------------------------


def fleet(count: int = 40, per_rack: int = 5) -> list[PlanHost]:
    """dn01..dn40 with dn01-05 in r1, dn06-10 in r2, ..."""
    return [
        PlanHost(f"dn{i:02d}", rack=f"r{(i - 1) // per_rack + 1}", cluster="c1", datacenter="d1")
        for i in range(1, count + 1)
    ]


def test_forty_hosts_in_eight_racks_quarter_batches_one_canary() -> None:
    plan = plan_batches(fleet(), Strategy(batch=Percent(25), canary=1, spread_by="rack"))
    # 39 hosts after the canary in ceil(39/10) = 4 batches: fewer batches than a rack has hosts,
    # so each rack of 5 must double up once; r1, down to 4 after the canary, never does.
    assert plan == [
        ["dn01"],
        ["dn03", "dn06", "dn10", "dn14", "dn18", "dn22", "dn26", "dn30", "dn34", "dn38"],
        ["dn04", "dn07", "dn11", "dn15", "dn19", "dn23", "dn27", "dn31", "dn35", "dn39"],
        ["dn05", "dn08", "dn12", "dn16", "dn20", "dn24", "dn28", "dn32", "dn36", "dn40"],
        ["dn02", "dn09", "dn13", "dn17", "dn21", "dn25", "dn29", "dn33", "dn37"],
    ]


def test_enough_batches_put_every_rack_once_per_batch() -> None:
    plan = plan_batches(fleet(), Strategy(batch=5, spread_by="rack"))
    assert plan[:2] == [
        ["dn01", "dn09", "dn17", "dn25", "dn33"],
        ["dn02", "dn10", "dn18", "dn26", "dn34"],
    ]
    rack = {h.hostname: h.rack for h in fleet()}
    assert len(plan) == 8
    assert all(len({rack[h] for h in batch}) == 5 for batch in plan)


def test_without_spreading_batches_are_runs_of_names() -> None:
    plan = plan_batches(fleet(11), Strategy(batch=4, canary=2))
    assert plan == [
        ["dn01", "dn02"],
        ["dn03", "dn04", "dn05"],
        ["dn06", "dn07", "dn08"],
        ["dn09", "dn10", "dn11"],
    ]


def test_canaries_come_from_different_racks() -> None:
    plan = plan_batches(fleet(), Strategy(batch=10, canary=3, spread_by="rack"))
    assert plan[0] == ["dn01", "dn06", "dn11"]


def test_edge_cases() -> None:
    assert plan_batches([], Strategy(canary=2)) == []
    assert plan_batches(fleet(3), Strategy(canary=5)) == [["dn01", "dn02", "dn03"]]
    names = ["dn10", "dn9", "dn1"]
    unracked = [PlanHost(n) for n in names]  # no rack: one shared unknown domain
    assert plan_batches(unracked, Strategy(batch=2, spread_by="rack")) == [["dn1", "dn10"], ["dn9"]]
    with pytest.raises(ValueError, match="only once"):
        plan_batches([PlanHost("a"), PlanHost("a")], Strategy())


# --- batch planning: properties -----------------------------------------------------------------

DOMAINS = ("rack", "cluster", "datacenter")


@st.composite
def stage_hosts(draw: st.DrawFn) -> list[PlanHost]:
    count = draw(st.integers(0, 60))
    racks = st.none() | st.sampled_from([f"r{i}" for i in range(draw(st.integers(1, 12)))])
    small = st.sampled_from(["a", "b", "c"])
    return [
        PlanHost(f"h{i}", rack=draw(racks), cluster=draw(small), datacenter=draw(small))
        for i in range(count)
    ]


strategies = st.builds(
    Strategy,
    batch=st.integers(1, 25) | st.integers(1, 100).map(lambda p: f"{p}%"),
    canary=st.integers(0, 5),
    spread_by=st.sampled_from(("none", *DOMAINS)),
)


def split(plan: list[list[str]], hosts: list[PlanHost], strategy: Strategy) -> Any:
    has_canary = strategy.canary > 0 and bool(hosts)
    return (plan[0] if has_canary else []), (plan[1:] if has_canary else plan)


@settings(max_examples=200, deadline=None)
@given(hosts=stage_hosts(), strategy=strategies)
def test_a_plan_partitions_the_hosts_into_bounded_batches(
    hosts: list[PlanHost], strategy: Strategy
) -> None:
    plan = plan_batches(hosts, strategy)
    assert Counter(name for batch in plan for name in batch) == Counter(h.hostname for h in hosts)
    assert all(plan)  # no empty batch
    canary, batches = split(plan, hosts, strategy)
    size = strategy.batch_size(len(hosts))
    assert len(canary) == min(strategy.canary, len(hosts))
    assert len(batches) == math.ceil((len(hosts) - len(canary)) / size)
    assert all(len(batch) <= size for batch in batches)
    assert max(map(len, batches), default=0) - min(map(len, batches), default=0) <= 1


@settings(max_examples=200, deadline=None)
@given(hosts=stage_hosts(), strategy=strategies.filter(lambda s: s.spread_by != "none"))
def test_domains_are_spread(hosts: list[PlanHost], strategy: Strategy) -> None:
    plan = plan_batches(hosts, strategy)
    domain = {h.hostname: getattr(h, strategy.spread_by) or "" for h in hosts}
    canary, batches = split(plan, hosts, strategy)
    if len(canary) <= len(set(domain.values())):
        assert len({domain[h] for h in canary}) == len(canary)
    sizes = Counter(domain[h] for batch in batches for h in batch)
    for batch in batches:
        per_batch = Counter(domain[h] for h in batch)
        # the spread property whenever batches >= the largest domain, and in general
        # no domain has more than its fair share ceil(m / k) in any batch
        if len(batches) >= max(sizes.values()):
            assert max(per_batch.values()) == 1
        assert all(n <= math.ceil(sizes[d] / len(batches)) for d, n in per_batch.items())


@settings(max_examples=50, deadline=None)
@given(hosts=stage_hosts(), strategy=strategies, data=st.data())
def test_plans_do_not_depend_on_input_order(
    hosts: list[PlanHost], strategy: Strategy, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(hosts))
    assert plan_batches(shuffled, strategy) == plan_batches(hosts, strategy)


def test_structure_and_library_problems_come_together(library: OperationLibrary) -> None:
    text = """
name: broken
version: 1
description: two problems, one pass
stages:
  - name: a
    steps:
      - operation: no_such_op
  - name: a
    steps:
      - operation: wait
        params: {seconds: 1}
"""
    with pytest.raises(SpecError):
        parse_workflow(text)  # strict by default
    issues = check_workflow(parse_workflow(text, structure=False), library)
    assert sorted((i.path, i.line) for i in issues) == [
        ("stages[0].steps[0].operation", 8),
        ("stages[1].name", 9),
    ]
