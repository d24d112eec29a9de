"""The `verify` stage: checks after each batch, counted toward the stage's failure threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from fleetops.changes.operations import load_library
from fleetops.changes.specs import SpecError
from fleetops.changes.workflows import check_workflow, parse_workflow
from tests.changes.fleet import approve, fleet_doc, load_fleet, write_ops
from tests.changes.test_rolling import wait_state
from tests.fixtures.app import Tokens

# A read-only check: the host is unhealthy when its name is listed in the `bad` file.
HEALTHY_OP = """
name: host_healthy
version: 1
description: Fail on the hosts listed in a file, as a broken deployment would.
risk: read_only
kind: check
idempotent: true
timeout: 10
params:
  bad: {type: string, required: true}
run: >-
  if grep -qx {{ host.hostname }} {{ bad }}; then
  echo "{{ host.hostname }}: expected healthy, found listed in {{ bad }}" >&2; exit 1; fi
"""

DEPLOY = """
name: deploy
version: 1
description: Append a line per host two at a time, checking each batch before the next.
params:
  dir: {type: string, required: true}
  bad: {type: string, required: true}
stages:
  - name: install
    steps:
      - operation: append_line
        params: {dir: "{{ params.dir }}"}
    strategy: {batch: 2, max_failures: MAX, on_failure: pause, on_abort: rollback}
  - name: checks
    type: verify
    steps:
      - operation: host_healthy
        params: {bad: "{{ params.bad }}"}
"""


@pytest.fixture
def ops_dir(tmp_path: Path) -> Path:
    """The site operations of these tests (the app loads them at start): with a check."""
    directory = write_ops(tmp_path / "ops")
    (directory / "host_healthy.yaml").write_text(HEALTHY_OP)
    return directory


def _start(client: TestClient, users: Tokens, work_dir: Path, bad: Path, max_failures: int) -> int:
    source = DEPLOY.replace("MAX", str(max_failures))
    made = client.post(
        "/api/v1/workflows", json={"source": source}, headers=users.headers("developer")
    )
    assert made.status_code == 201, made.text
    body = {
        "workflow": "deploy",
        "selector": "all",
        "title": "deploy with checks",
        "params": {"dir": str(work_dir), "bad": str(bad)},
    }
    submitted = client.post("/api/v1/changes", json=body, headers=users.headers("developer"))
    assert submitted.status_code == 201, submitted.text
    approve(client.post, users, submitted.json())
    return int(submitted.json()["id"])


def _by_host(change: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["hostname"]: h for h in change["hosts"]}


def test_failed_checks_past_the_threshold_stop_the_rollout(
    engine_client: TestClient,
    db_url: str,
    users: Tokens,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    load_fleet(db_url, fleet_doc(8, 2))
    bad = tmp_path / "bad"
    bad.write_text("h003\nh004\n")  # the whole second batch deploys, but does not work
    cid = _start(engine_client, users, work_dir, bad, max_failures=2)

    paused = wait_state(engine_client, users, cid, "paused")

    assert "2 failed host(s) in stage install reached max_failures 2" in paused["status"]
    hosts = _by_host(paused)
    assert set(hosts) == {f"h{i:03d}" for i in range(1, 9)}  # the verify stage has no runs
    assert {h["stage_index"] for h in paused["hosts"]} == {0}
    assert [n for n, h in hosts.items() if h["state"] == "failed"] == ["h003", "h004"]
    for name in ("h003", "h004"):
        # the step itself ran; its check failed, with the check's own words
        assert (work_dir / name).read_text().strip() == str(cid)
        assert "host_healthy run: exit 1" in hosts[name]["error"]
        assert f"{name}: expected healthy, found listed in" in hosts[name]["error"]
    assert [n for n, h in hosts.items() if h["state"] == "succeeded"] == ["h001", "h002"]
    # the batches after the failing one never started
    assert not any((work_dir / f"h{i:03d}").exists() for i in range(5, 9))
    assert all(hosts[f"h{i:03d}"]["state"] == "pending" for i in range(5, 9))


def test_failed_checks_below_the_threshold_let_the_rollout_finish_failed(
    engine_client: TestClient,
    db_url: str,
    users: Tokens,
    work_dir: Path,
    tmp_path: Path,
) -> None:
    load_fleet(db_url, fleet_doc(6, 2))
    bad = tmp_path / "bad"
    bad.write_text("h003\n")
    cid = _start(engine_client, users, work_dir, bad, max_failures=2)

    done = wait_state(engine_client, users, cid, "failed", "succeeded")

    assert done["state"] == "failed"
    assert "1 host(s) failed: h003" in done["status"]
    hosts = _by_host(done)
    assert [n for n, h in hosts.items() if h["state"] == "failed"] == ["h003"]
    assert all((work_dir / name).exists() for name in hosts)  # every batch ran
    # each host ran the step and then the check, both journaled
    steps = engine_client.get(
        f"/api/v1/changes/{cid}/steps", params={"host": "h001"}, headers=users.headers("viewer")
    )
    assert steps.status_code == 200, steps.text
    ran = [(s["step_index"], s["operation"], s["phase"], s["state"]) for s in steps.json()]
    assert [r[:3] for r in ran] == [
        (0, "append_line", "check"),
        (0, "append_line", "run"),
        (1, "host_healthy", "run"),
    ]


def _issues(source: str, ops: Path) -> list[str]:
    try:
        spec = parse_workflow(source)
    except SpecError as exc:
        return [f"{i.path}: {i.message}" for i in exc.issues]
    return [f"{i.path}: {i.message}" for i in check_workflow(spec, load_library(ops))]


def test_a_verify_stage_is_checked_for_what_it_may_hold(ops_dir: Path) -> None:
    ok = DEPLOY.replace("MAX", "1")
    assert _issues(ok, ops_dir) == []
    spec = parse_workflow(ok)
    assert [spec.planned(i) for i in range(2)] == [True, False]
    assert [s.operation for s in spec.host_steps(0)] == ["append_line", "host_healthy"]

    # only checks may be in a verify stage
    acting = ok.replace("operation: host_healthy", "operation: append_line")
    acting = acting.replace('params: {bad: "{{ params.bad }}"}', 'params: {dir: "/tmp"}')
    [problem] = _issues(acting, ops_dir)
    assert problem.startswith("stages[1].steps[0].operation: a verify stage runs checks only")
    assert "'append_line' is not one (kind: action): use a check (" in problem

    # rolling with the stage before, it has no strategy of its own, and needs that stage
    strategic = ok + "    strategy: {batch: 2}\n"
    [problem] = _issues(strategic, ops_dir)
    assert problem.startswith("stages[1].strategy: a verify stage that runs after each batch")
    first = """
name: only-checks
version: 1
description: Checks alone.
stages:
  - name: checks
    type: verify
    steps:
      - operation: host_healthy
        params: {bad: /tmp/none}
"""
    [problem] = _issues(first, ops_dir)
    assert "needs a stage before it; use 'after: stage'" in problem
    alone = first.replace("type: verify", "type: verify\n    after: stage")
    assert _issues(alone, ops_dir) == []
    assert parse_workflow(alone).planned(0)

    # a spec's JSON form spells out every default, and reads back the same
    assert parse_workflow(yaml.safe_dump(spec.model_dump(mode="json"))) == spec

    typo = first.replace("type: verify", "type: verfy")
    [problem] = _issues(typo, ops_dir)
    assert problem == "stages[0].type: unknown type 'verfy' (expected one of run, verify)"
    misplaced = ok.replace(
        "    steps:\n      - operation: append_line",
        "    after: stage\n    steps:\n      - operation: append_line",
    )
    [problem] = _issues(misplaced, ops_dir)
    assert problem == "stages[0].after: 'after' applies to verify stages only (type: verify)"
