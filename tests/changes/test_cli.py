"""The change CLI as a user runs it: real processes on both databases, and a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from fleetops.db import make_engine
from fleetops.models import AuditRecord
from tests.fixtures.server import cli_env, running_server
from tests.fixtures.server import cli_ok as ok
from tests.fixtures.server import run_cli as run

WORKFLOW = """\
name: touch
version: 1
description: Run one command on each host, a third at a time.
params:
  command: {type: string, required: true}
stages:
  - name: main
    steps:
      - operation: shell
        params: {command: "{{ params.command }}"}
    strategy: {batch: 33%, max_failures: 1}
"""
# Ten simulated hosts: a change on one of them is medium risk (shell), so one approval.
INVENTORY = """\
[sim]
sim-[01:10]

[sim:vars]
executor=simulated
"""
# Each file holds one mistake of its own kind, at a known line.
BROKEN = {
    "batch.yaml": WORKFLOW.replace("batch: 33%", "batch: 25 percent"),
    "operation.yaml": WORKFLOW.replace("operation: shell", "operation: shel"),
    "stages.yaml": WORKFLOW
    + "  - name: main\n    steps:\n      - operation: shell\n"
    + '        params: {command: "true"}\n',
}


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    # The server only serves here: the engine would need executors for the simulated hosts.
    return cli_env(db_url, tmp_path / "data", FLEETOPS_ENGINE_ENABLED="false")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_operations_and_workflow_files(env: dict[str, str], tmp_path: Path) -> None:
    operations = {op["name"]: op for op in json.loads(ok(env, "operation", "list", "-o", "json"))}
    assert {"shell", "drain_host", "undrain_host", "reboot", "service_restart", "wait"} <= set(
        operations
    )
    assert (operations["reboot"]["risk"], operations["reboot"]["idempotent"]) == ("high", False)

    good = write(tmp_path, "touch.yaml", WORKFLOW)
    assert f"{good}: valid" in ok(env, "workflow", "validate", good)
    expected = {
        "batch.yaml": "stages[0].strategy.batch: expected an integer or a percentage like "
        "'25%', got '25 percent' (line 11)",
        "operation.yaml": "stages[0].steps[0].operation: unknown operation 'shel' "
        "(did you mean 'shell'?) (line 9)",
        "stages.yaml": "stages[1].name: duplicate stage name 'main' (also stages[0]) (line 12)",
    }
    for name, problem in expected.items():
        path = write(tmp_path, name, BROKEN[name])
        result = run(env, "workflow", "validate", path)
        assert result.returncode == 1, result.stderr
        assert f"{path}: 1 problem(s)" in result.stderr
        assert problem in result.stderr

    assert "touch" in ok(env, "workflow", "register", good)
    [listed] = json.loads(ok(env, "workflow", "list", "-o", "json"))
    assert (listed["name"], listed["version"]) == ("touch", 1)
    assert listed["created_by"].startswith("local:")


def refused_votes(db_url: str) -> list[tuple[str, str]]:
    """The audited refusals: (action, change id)."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditRecord.action, AuditRecord.entity_id).where(
                AuditRecord.outcome == "refused"
            )
        ).all()
    engine.dispose()
    return [(row.action, row.entity_id) for row in rows]


def test_change_submit_approve_list_show_and_freeze(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    assert "created 10 hosts" in ok(env, "host", "import", write(tmp_path, "sim.ini", INVENTORY))
    ok(env, "workflow", "register", write(tmp_path, "touch.yaml", WORKFLOW))
    submit = ["change", "submit", "touch", "-t", "sim-03", "--title", "touch one host"]
    bad = run(env, *submit, "-p", "command")
    assert bad.returncode == 2
    assert "-p takes NAME=VALUE" in bad.stderr

    submitted = ok(env, *submit, "-p", "command=echo hi")
    assert submitted.startswith("change 1: pending_approval (medium risk, 1 hosts)")

    own = run(env, "change", "approve", "1", "-m", "looks fine")
    assert own.returncode == 4
    assert "RequesterCannotApprove" in own.stderr
    assert refused_votes(db_url) == [("change.approve", "1")]  # four-eyes violations leave a trace

    operator = ["user", "create", "olga", "--role", "operator", "--password-stdin"]
    ok(env, *operator, stdin="long-enough-password\n")
    token = ok(env, "token", "create", "--name", "laptop", "--user", "olga").strip()
    with running_server(env) as url:
        remote = env | {"FLEETOPS_SERVER": url, "FLEETOPS_TOKEN": token}
        approved = ok(remote, "change", "approve", "1", "-m", "looks fine")
        assert approved.startswith("change 1: approved")
        [change] = json.loads(ok(remote, "change", "list", "-o", "json"))["items"]
    assert change["requester"].startswith("local:")
    assert (change["state"], change["approvals"], change["approvals_required"]) == (
        "approved",
        1,
        1,
    )
    assert (change["params"], change["hosts_by_state"]) == ({"command": "echo hi"}, {"pending": 1})

    shown = ok(env, "change", "show", "1")
    assert "olga" in shown  # the approval
    assert "sim-03" in shown  # the planned host
    assert "approved by 1 operator(s)" in shown

    window = ["--from", "2031-12-20T00:00:00Z", "--until", "2032-01-03T00:00:00Z"]
    ok(env, "freeze", "create", "year-end", *window, "--reason", "holidays")
    [freeze] = json.loads(ok(env, "freeze", "list", "-o", "json"))
    assert (freeze["name"], freeze["reason"]) == ("year-end", "holidays")
    assert freeze["ends_at"].startswith("2032-01-03")
