"""Every operation in the library, enumerated: one that is approved without review (read_only or
low risk) must not run anything on the fleetops server, nor take command text from a parameter.

A new built-in action must say here where it runs, so the rule cannot be skipped by adding one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fleetops.changes.actions import ACTIONS
from fleetops.changes.operations import (
    SERVER_ACTIONS,
    ActionCall,
    OperationSpec,
    SpecError,
    load_library,
)

# Where each built-in action does its work. "server": a process on the fleetops server.
WHERE = {
    "wait": "nowhere",  # a sleep in the engine
    "file_put": "host",  # through the host's executor
    "reboot": "host",
    "inspect_hardware": "host",  # probes through the host's executor; results to the database
    "ansible_playbook": "server",  # ansible-playbook runs here, then connects to the host
}
UNREVIEWED = ("read_only", "low")
LIBRARY = load_library()


def test_every_action_says_where_it_runs() -> None:
    assert set(WHERE) == set(ACTIONS)
    assert {a for a, where in WHERE.items() if where == "server"} == SERVER_ACTIONS


def _calls(op: OperationSpec) -> list[str | ActionCall]:
    found: list[str | ActionCall] = []
    for _, invocation in op.phases():
        pending = [invocation]
        while pending:
            inv = pending.pop()
            pending.extend(inv.cases.values())
            if inv.command is not None or inv.action is not None:
                found.append(inv._call())
    return found


def _raw_values(template: str) -> list[str]:
    tree = ImmutableSandboxedEnvironment().parse(template)
    return [
        node.node.name if isinstance(node.node, nodes.Name) else "?"
        for node in tree.find_all(nodes.Filter)
        if node.name == "raw"
    ]


@pytest.mark.parametrize("op", LIBRARY.latest(), ids=lambda op: op.name)
def test_an_unreviewed_operation_stays_on_the_host_and_runs_only_its_own_text(
    op: OperationSpec,
) -> None:
    calls = _calls(op)
    assert calls, op.name
    if op.risk not in UNREVIEWED:
        return
    for call in calls:
        if isinstance(call, ActionCall):
            assert WHERE[call.action] != "server", f"{op.name} runs {call.action} on the server"
        else:
            assert _raw_values(call) == [], f"{op.name} puts a parameter raw into its command"
    # stdin is text a command reads: for an unreviewed operation, only secret data may go there
    if op.stdin:
        used = _names(op.stdin)
        assert all(op.params[name].secret for name in used if name in op.params), op.name


def _names(template: str) -> set[str]:
    tree = ImmutableSandboxedEnvironment().parse(template)
    return {n.name for n in tree.find_all(nodes.Name)}


@pytest.mark.parametrize(
    ("risk", "body", "problem"),
    [
        ("low", 'run: "{{ cmd|raw }}"', "takes command text from a parameter"),
        (
            "read_only",
            "run: {action: ansible_playbook, params: {playbook: x.yml}}",
            "on the server",
        ),
    ],
)
def test_the_library_refuses_such_an_operation(
    tmp_path: Path, risk: str, body: str, problem: str
) -> None:
    (tmp_path / "sneaky.yaml").write_text(
        f"name: sneaky\nversion: 1\ndescription: d\nrisk: {risk}\n"
        f"params:\n  cmd: {{type: string, default: x}}\n{body}\n"
    )
    with pytest.raises(SpecError, match=problem):
        load_library(tmp_path)
    medium = tmp_path / "sneaky.yaml"
    medium.write_text(medium.read_text().replace(f"risk: {risk}", "risk: medium"))
    assert load_library(tmp_path).get("sneaky") is not None  # reviewed like any command
