"""Operations: the shipped library, spec checks with exact paths and lines, params, redaction."""

from __future__ import annotations

import os
import stat
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fleetops.changes.operations import (
    ActionCall,
    Invocation,
    OperationSpec,
    ParamSpec,
    RetrySpec,
    SpecError,
    load_library,
    parse_operations,
    redact,
    validate_params,
)
from fleetops.changes.templating import HostFacts, operation_context, render

BUILTINS = {
    "shell": "medium",
    "script": "medium",
    "service_restart": "medium",
    "reboot": "high",
    "file_put": "medium",
    "http_check": "read_only",
    "wait": "read_only",
    "drain_host": "medium",
    "undrain_host": "low",
    "ansible_playbook": "medium",
    "verify_host": "low",
    "inspect_hardware": "low",
    "service_active": "read_only",
    "process_running": "read_only",
    "version_equals": "medium",
    "file_checksum": "read_only",
    "port_open": "read_only",
    "command_output": "medium",
    "link_switch": "high",
    "filesystem_facts": "read_only",
    "trash_expunge": "high",
    "ext4_reserve": "medium",
    "trash_unlayer": "high",
    "scheduler_requests": "medium",
    "scheduler_quotas": "read_only",
}
SCHEDULERS = ("kubernetes", "yarn", "slurm", "none")
DROP = object()  # leave the param out

VALID = """\
name: restart
version: 1
description: Restart a service.
risk: medium
params:
  service: {type: string, required: true}
run: "systemctl restart {{ service }}"
"""


def op(text: str) -> str:
    return textwrap.dedent(text)


def issues_of(text: str, source: str = "ops/restart.yaml") -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_operations(op(text), source=source)
    return [str(issue) for issue in info.value.issues]


def rendered(name: str, phase: str, scheduler: str, **given: Any) -> str:
    """A built-in's phase rendered for a host with the given scheduler label."""
    spec = load_library().get(name)
    assert spec is not None
    values = validate_params(spec.params, given)
    labels = {"scheduler": scheduler}
    host = HostFacts(hostname="dn1.example.com", rack="r1", labels=labels)
    context = operation_context(values, host=host, change_id=42, timeout=spec.timeout)
    invocation = getattr(spec, phase)
    call = invocation.resolve(labels)
    assert isinstance(call, str)
    return render(call, context)


def run_sh(command: str, path_dir: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{path_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, env=env, timeout=10, **kw
    )


def fake_tool(directory: Path, name: str, script: str) -> None:
    """A stand-in for an admin CLI (yarn, kubectl...) that logs its arguments."""
    path = directory / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{directory}/calls.log"\n{script}\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


# --- the shipped library ------------------------------------------------------------------------


def test_the_builtin_library_loads_with_the_declared_risks() -> None:
    library = load_library()
    assert {name: library.get(name).risk for name in library.names()} == BUILTINS  # type: ignore[union-attr]
    assert [spec.name for spec in library.latest()] == sorted(BUILTINS)


def test_verify_host_fails_on_kernel_hardware_errors_and_unwritable_disks(tmp_path: Path) -> None:
    command = rendered("verify_host", "run", "none", path=str(tmp_path))
    assert run_sh(command, tmp_path).returncode == 0  # this machine's kernel log is clean
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    fake_tool(
        tmp_path,
        "dmesg",
        "echo '[12.3] blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ)'",
    )
    failed = run_sh(command, tmp_path)
    assert failed.returncode == 1
    assert "I/O error, dev sdb" in failed.stderr
    (tmp_path / "dmesg").unlink()
    missing = rendered("verify_host", "run", "none", path=str(tmp_path / "gone"))
    assert run_sh(missing, tmp_path).returncode != 0


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("reboot", "reboot"),
        ("file_put", "file_put"),
        ("wait", "wait"),
        ("ansible_playbook", "ansible_playbook"),
        ("inspect_hardware", "inspect_hardware"),
    ],
)
def test_action_builtins(name: str, action: str) -> None:
    spec = load_library().get(name)
    assert spec is not None
    call = spec.run.resolve({})
    assert isinstance(call, ActionCall)
    assert call.action == action


@pytest.mark.parametrize("name", ["drain_host", "undrain_host"])
@pytest.mark.parametrize("phase", ["run", "check"])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_drain_commands_exist_for_every_scheduler(name: str, phase: str, scheduler: str) -> None:
    command = rendered(name, phase, scheduler)
    assert command.strip()
    assert "{{" not in command


def test_drain_commands_per_scheduler() -> None:
    assert rendered("drain_host", "run", "kubernetes") == (
        "kubectl drain dn1.example.com --ignore-daemonsets --delete-emptydir-data --timeout=900s"
    )
    assert rendered("undrain_host", "run", "kubernetes") == "kubectl uncordon dn1.example.com"
    assert rendered("drain_host", "run", "slurm", reason="disk swap").splitlines()[0] == (
        "scontrol update NodeName=dn1.example.com State=DRAIN Reason='disk swap (change 42)'"
    )
    assert rendered("undrain_host", "run", "slurm") == (
        "scontrol update NodeName=dn1.example.com State=RESUME"
    )
    assert rendered("drain_host", "run", "none") == "true"


def test_a_host_with_no_known_scheduler_is_not_silently_skipped() -> None:
    spec = load_library().get("drain_host")
    assert spec is not None
    with pytest.raises(SpecError, match=r"run.cases: no case for the host \(scheduler='pbs'\)"):
        spec.run.resolve({"scheduler": "pbs"})
    with pytest.raises(SpecError, match="no such label"):
        spec.run.resolve({})


def test_yarn_drain_and_undrain_really_edit_the_exclude_file(tmp_path: Path) -> None:
    fake_tool(tmp_path, "yarn", "exit 0")
    exclude = tmp_path / "yarn.exclude"
    exclude.write_text("dn9.example.com\n")
    drain = rendered("drain_host", "run", "yarn", exclude_file=str(exclude))
    for _ in range(2):  # idempotent: the host is listed once however often it runs
        assert run_sh(drain, tmp_path).returncode == 0
    assert exclude.read_text() == "dn9.example.com\ndn1.example.com\n"
    undrain = rendered("undrain_host", "run", "yarn", exclude_file=str(exclude))
    check = rendered("undrain_host", "check", "yarn", exclude_file=str(exclude))
    assert run_sh(check, tmp_path).returncode == 1  # still excluded: not yet undrained
    assert run_sh(undrain, tmp_path).returncode == 0
    assert exclude.read_text() == "dn9.example.com\n"
    assert run_sh(check, tmp_path).returncode == 0
    exclude.write_text("dn1.example.com\n")  # the last host out leaves an empty file, not an error
    assert run_sh(undrain, tmp_path).returncode == 0
    assert exclude.read_text() == ""
    assert (tmp_path / "calls.log").read_text().splitlines() == [
        "yarn rmadmin -refreshNodes -g 900 -client",
        "yarn rmadmin -refreshNodes -g 900 -client",
        "yarn rmadmin -refreshNodes",
        "yarn rmadmin -refreshNodes",
    ]


@pytest.mark.parametrize(("unschedulable", "drained"), [("true", 0), ("", 1)])
def test_kubernetes_drain_check_reads_the_cordon(
    tmp_path: Path, unschedulable: str, drained: int
) -> None:
    fake_tool(tmp_path, "kubectl", f"printf '{unschedulable}'")
    assert run_sh(rendered("drain_host", "check", "kubernetes"), tmp_path).returncode == drained
    assert run_sh(rendered("undrain_host", "check", "kubernetes"), tmp_path).returncode != drained
    assert "kubectl get node dn1.example.com -o jsonpath={.spec.unschedulable}" in (
        (tmp_path / "calls.log").read_text()
    )


def test_service_restart_waits_for_active(tmp_path: Path) -> None:
    fake_tool(tmp_path, "systemctl", 'case "$1" in is-active) exit "${ACTIVE:-0}";; esac')
    command = rendered("service_restart", "run", "none", service="hadoop-hdfs-datanode")
    assert run_sh(command, tmp_path).returncode == 0
    never = rendered("service_restart", "run", "none", service="x", settle=0)
    assert run_sh(f"ACTIVE=3; export ACTIVE; {never}", tmp_path).returncode == 1
    assert "systemctl restart hadoop-hdfs-datanode" in (tmp_path / "calls.log").read_text()


def test_file_put_check_compares_content_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "motd"
    target.write_text("hello 'world' $(id)\n")
    target.chmod(0o644)
    given = {"path": str(target), "content": "hello 'world' $(id)\n"}
    assert run_sh(rendered("file_put", "check", "none", **given), tmp_path).returncode == 0
    changed = {**given, "content": "other"}
    assert run_sh(rendered("file_put", "check", "none", **changed), tmp_path).returncode == 1
    target.chmod(0o600)
    assert run_sh(rendered("file_put", "check", "none", **given), tmp_path).returncode == 1


def test_script_sends_its_content_on_stdin() -> None:
    spec = load_library().get("script")
    assert spec is not None
    assert spec.stdin is not None
    values = validate_params(spec.params, {"content": 'echo "$1-$2"\n', "args": ["a b", "$(id)"]})
    context = operation_context(values, host=HostFacts("h"), change_id=1, timeout=spec.timeout)
    command = render(str(spec.run.resolve({})), context)
    stdin = render(spec.stdin, context, shell=False)
    result = subprocess.run(
        ["/bin/sh", "-c", command], input=stdin, capture_output=True, text=True, check=True
    )
    assert result.stdout == "a b-$(id)\n"


# --- libraries: directories, overrides, versions ------------------------------------------------


def test_site_operations_override_by_version_and_keep_the_others(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    restart_v1 = VALID.replace("name: restart", "name: service_restart")
    (site / "restart.yaml").write_text(
        f"- {textwrap.indent(restart_v1, '  ').strip()}\n"
        f"- {textwrap.indent(restart_v1.replace('version: 1', 'version: 2'), '  ').strip()}\n"
    )
    (site / "notes.txt").write_text("not an operation")
    library = load_library(site)
    assert library.versions("service_restart") == [1, 2]
    assert library.get("service_restart").version == 2  # type: ignore[union-attr]
    assert library.get("service_restart", 1).description == "Restart a service."  # type: ignore[union-attr]
    assert library.source("service_restart", 1) == str(site / "restart.yaml")
    assert library.get("service_restart", 3) is None
    assert library.get("nope") is None
    assert len(library) == len(BUILTINS)


def test_a_repeated_version_in_one_directory_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("ops").mkdir()
    Path("ops/a.yaml").write_text(VALID)
    Path("ops/b.yml").write_text(VALID)
    Path("ops/restart.yaml").write_text(VALID.replace("type: string", "type: str"))
    with pytest.raises(SpecError) as info:
        load_library(Path("ops"), Path("missing"))
    assert [str(i) for i in info.value.issues] == [
        "ops/b.yml: name: operation 'restart' version 1 is also in ops/a.yaml",
        "ops/restart.yaml: params.service.type: unknown type 'str' (expected one of string, "
        "integer, number, boolean, list, object) (line 6)",
        "missing: not a directory",
    ]
    assert str(info.value).startswith("3 problems:\n  ops/b.yml: name:")
    assert info.value.status_code == 400
    assert info.value.to_json()["issues"][1] == {
        "path": "params.service.type",
        "message": "unknown type 'str' (expected one of string, integer, number, boolean, "
        "list, object)",
        "line": 6,
        "source": "ops/restart.yaml",
    }


# --- invalid specs: exact paths and lines -------------------------------------------------------

INVALID = [
    (VALID.replace("name: restart", "name: Restart"),
     "name: invalid value 'Restart' (expected to match "
     "^[a-z][a-z0-9_]{1,63}$) (line 1)"),
    (VALID.replace("version: 1", "version: 0"), "version: must be at least 1, got 0 (line 2)"),
    (VALID.replace("version: 1", "version: '1'"),
     "version: expected integer, got string '1' (line 2)"),
    (VALID.replace("risk: medium", "risk: hi"),
     "risk: unknown risk 'hi' (expected one of read_only, low, medium, high) (line 4)"),
    (VALID + "retry: {count: 1}\n", "retry: unknown field (line 8)"),
    (VALID.replace('run: "systemctl restart {{ service }}"\n', ""), "run: required (line 1)"),
    (VALID + "timeout: 0\n", "timeout: must be more than 0, got 0 (line 8)"),
    (VALID + "retries: {count: -1}\n", "retries.count: must be at least 0, got -1 (line 8)"),
    (VALID.replace('run: "systemctl restart {{ service }}"', "run: {action: explode}"),
     "run.action: unknown action 'explode' (expected one of wait, file_put, reboot, "
     "ansible_playbook, inspect_hardware) (line 7)"),
    (VALID.replace('run: "systemctl restart {{ service }}"', "run: {action: wait}"),
     "run.params: wait requires params: seconds (line 7)"),
    (VALID.replace('run: "systemctl restart {{ service }}"',
                   "run:\n  action: wait\n  params: {seconds: 1, minutes: 2}"),
     "run.params: unknown wait params: minutes (known: seconds) (line 9)"),
    (VALID.replace('run: "systemctl restart {{ service }}"', "run: {action: reboot, cmd: x}"),
     "run.cmd: unknown field (line 7)"),
    (VALID.replace('run: "systemctl restart {{ service }}"',
                   "run: {command: x, action: reboot}"),
     "run: expected a command string, {action: ..., params: ...} or {by_label: ..., cases: ...} "
     "(line 7)"),
    (VALID.replace('run: "systemctl restart {{ service }}"', "run: {by_label: scheduler}"),
     "run: by_label needs cases (line 7)"),
    (VALID.replace('run: "systemctl restart {{ service }}"', "run: 5"),
     "run: expected mapping, got integer 5 (line 7)"),
    (VALID.replace('run: "systemctl restart {{ service }}"',
                   "run:\n  by_label: a\n  cases:\n    x: {by_label: b, cases: {y: 'true'}}"),
     "run.cases: a case cannot choose by label again: x (line 9)"),
    (VALID.replace("{{ service }}", "{{ servce }}"),
     "run: undefined variable 'servce' (declared params: service) (line 7)"),
    (VALID.replace("{{ service }}", "{{ service }"),
     "run: template syntax: unexpected '}' at line 1 (line 7)"),
    (VALID + "check: {by_label: s, cases: {k: 'test {{ nope }}'}}\n",
     "check.cases.k: undefined variable 'nope' (declared params: service) (line 8)"),
    (VALID.replace("  service:", "  host: {type: string}\n  service:"),
     "params.host: 'host' is reserved for the template context; rename the parameter (line 6)"),
    (VALID.replace("  service:", "  Bad-Name: {type: string}\n  service:"),
     "params.Bad-Name: invalid value 'Bad-Name' (expected to match ^[a-z_][a-z0-9_]{0,63}$) "
     "(line 6)"),
    (VALID.replace("  service:", "  n: {type: integer, pattern: '[0-9]+'}\n  service:"),
     "params.n.pattern: only a string param can have a pattern (line 6)"),
    (VALID.replace("  service:", "  s: {type: string, pattern: '('}\n  service:"),
     "params.s.pattern: invalid regular expression: missing ), unterminated subpattern at "
     "position 0 (line 6)"),
    (VALID.replace("required: true}", "required: true, default: x}"),
     "params.service.default: a required param cannot have a default (line 6)"),
    (VALID.replace("  service:", "  count: {type: integer, default: '3'}\n  service:"),
     "params.count.default: expected integer, got string '3' (line 6)"),
    (VALID.replace("  service:", "  m: {type: string, enum: [soft, hard], default: x}\n  service:"),
     "params.m.default: expected one of soft, hard, got 'x' (line 6)"),
    (VALID.replace("  service:", "  m: {type: integer, enum: [1, two]}\n  service:"),
     "params.m.enum: enum values must be of the param's type: expected integer, got string "
     "'two' (line 6)"),
    (VALID.replace('run: "systemctl restart {{ service }}"',
                   "run: {action: wait, params: {seconds: 1}}\nstdin: hi"),
     "stdin: only a command takes stdin (line 8)"),
    (VALID + "risk: low\n", "risk: duplicate key (line 8)"),
    ("", "expected an operation or a list of operations, got null (line None)"),
    ("- 3\n", "[0]: expected mapping, got integer 3 (line 1)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_operation_specs(text: str, expected: str) -> None:
    found = issues_of(text, source="ops/restart.yaml")
    assert f"ops/restart.yaml: {expected}".replace(" (line None)", "") in found


def test_a_yaml_syntax_error_names_its_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_operations(VALID.replace("risk: medium", "risk: [medium"), source="r.yaml")
    (issue,) = info.value.issues
    assert (issue.source, issue.path, issue.line) == ("r.yaml", "", 5)
    assert issue.message.startswith("invalid YAML: while parsing a flow sequence")


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = """\
    name: restart
    version: 0
    description: ""
    risk: medium
    run: "x"
    """
    assert issues_of(text, source="r.yaml") == [
        "r.yaml: version: must be at least 1, got 0 (line 2)",
        "r.yaml: description: String should have at least 1 character (line 3)",
    ]


def test_aliases_that_explode_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    assert issues_of(bomb, source="b.yaml") == [
        "b.yaml: invalid YAML: aliases expand to far more data than the file holds"
    ]


def test_merge_keys_work_and_keep_lines() -> None:
    text = """\
    - &base
      name: one
      version: 1
      description: d
      risk: low
      run: "true"
    - <<: *base
      name: two
      risk: lo
    """
    assert issues_of(text, source="m.yaml") == [
        "m.yaml: [1].risk: unknown risk 'lo' (expected one of read_only, low, medium, high) "
        "(line 9)"
    ]


# --- parameters ---------------------------------------------------------------------------------

PARAMS = {
    "service": ParamSpec(type="string", required=True, pattern=r"[a-z-]+"),
    "mode": ParamSpec(type="string", enum=["soft", "hard"], default="soft"),
    "count": ParamSpec(type="integer", default=3),
    "ratio": ParamSpec(type="number"),
    "force": ParamSpec(type="boolean", default=False),
    "hosts": ParamSpec(type="list", default=[]),
    "extra": ParamSpec(type="object", default={}),
    "token": ParamSpec(type="string", secret=True, pattern="[a-f0-9]{8}"),
}


def test_defaults_are_applied_and_optional_params_are_none() -> None:
    assert validate_params(PARAMS, {"service": "nginx"}) == {
        "service": "nginx",
        "mode": "soft",
        "count": 3,
        "ratio": None,
        "force": False,
        "hosts": [],
        "extra": {},
        "token": None,
    }


def test_mutable_defaults_are_not_shared() -> None:
    first = validate_params(PARAMS, {"service": "a"})
    first["hosts"].append("x")
    assert validate_params(PARAMS, {"service": "a"})["hosts"] == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"service": DROP}, "params.service: required"),
        ({"count": "3"}, "params.count: expected integer, got string '3'"),
        ({"count": 3.0}, "params.count: expected integer, got number 3.0"),
        ({"count": True}, "params.count: expected integer, got boolean True"),
        ({"ratio": "0.5"}, "params.ratio: expected number, got string '0.5'"),
        ({"force": "yes"}, "params.force: expected boolean, got string 'yes'"),
        ({"force": 1}, "params.force: expected boolean, got integer 1"),
        ({"hosts": "a,b"}, "params.hosts: expected list, got string 'a,b'"),
        ({"extra": []}, "params.extra: expected object, got list"),
        ({"service": None}, "params.service: expected string, got null"),
        ({"service": "Nginx"}, "params.service: 'Nginx' does not match pattern '[a-z-]+'"),
        ({"service": "ok\n"}, "params.service: 'ok\\n' does not match pattern '[a-z-]+'"),
        ({"mode": "medium"}, "params.mode: expected one of soft, hard, got 'medium'"),
        ({"token": "sekrit"}, "params.token: value does not match pattern '[a-f0-9]{8}'"),
        ({"token": 12345678}, "params.token: expected string, got integer"),
        ({"servce": "x"}, "params.servce: unknown parameter (did you mean 'service'? expected one "
                          "of count, extra, force, hosts, mode, ratio, service, token)"),
    ],
)  # fmt: skip
def test_param_validation_matrix(given: dict[str, Any], expected: str) -> None:
    values = {k: v for k, v in {"service": "nginx", **given}.items() if v is not DROP}
    with pytest.raises(SpecError) as info:
        validate_params(PARAMS, values, path="params")
    assert expected in [str(issue) for issue in info.value.issues]


def test_valid_values_of_every_type() -> None:
    given = {"service": "a-b", "mode": "hard", "count": 0, "ratio": 1, "force": True,
             "hosts": ["x"], "extra": {"k": 1}, "token": "deadbeef"}  # fmt: skip
    assert validate_params(PARAMS, given) == given


def test_all_param_problems_come_together_with_the_path_prefix() -> None:
    with pytest.raises(SpecError) as info:
        validate_params(PARAMS, {"count": "x", "bogus": 1}, path="stages[0].steps[1].params")
    assert [i.path for i in info.value.issues] == [
        "stages[0].steps[1].params.bogus",
        "stages[0].steps[1].params.service",
        "stages[0].steps[1].params.count",
    ]


def test_unchecked_params_count_as_given() -> None:
    values = validate_params(PARAMS, {"service": "{{ params.s }}"}, unchecked={"service"})
    assert values["service"] == "{{ params.s }}"
    with pytest.raises(SpecError, match=r"unknown parameter \(this takes no parameters\)"):
        validate_params({}, {"x": 1})


def test_redact_hides_secrets_only() -> None:
    values = {"service": "nginx", "token": "deadbeef", "unknown": "kept"}
    assert redact(PARAMS, values) == {"service": "nginx", "token": "***", "unknown": "kept"}
    assert redact(PARAMS, {"token": None}) == {"token": None}
    assert values["token"] == "deadbeef"


# --- invocations and retries --------------------------------------------------------------------


def test_resolve_by_label_with_default() -> None:
    invocation = Invocation.model_validate(
        {"by_label": "scheduler", "cases": {"kubernetes": "k", "default": {"action": "reboot"}}}
    )
    assert invocation.resolve({"scheduler": "kubernetes"}) == "k"
    assert invocation.resolve({"scheduler": "slurm"}) == ActionCall("reboot", {})
    assert invocation.resolve({}) == ActionCall("reboot", {})
    assert Invocation.model_validate("echo hi").resolve({"scheduler": "x"}) == "echo hi"


def test_retry_backoff_doubles() -> None:
    retries = RetrySpec(count=3, backoff=5)
    assert [retries.delay(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]


def test_specs_are_frozen_and_schema_ready() -> None:
    spec = parse_operations(VALID)[0]
    with pytest.raises(ValueError, match="frozen"):
        spec.risk = "low"  # type: ignore[misc]
    assert "properties" in OperationSpec.model_json_schema()
