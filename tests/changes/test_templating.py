"""Command templates: values are shell-quoted (proved by a real /bin/sh); errors point at text."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from fleetops.changes.specs import SpecError
from fleetops.changes.templating import (
    HostFacts,
    TemplateError,
    attributes,
    operation_context,
    render,
    render_value,
    variables,
)

INJECTIONS = [
    "'; rm -rf / #",
    "$(id)",
    "`id`",
    "a\nid",
    '"; id; echo "',
    "$HOME ${PATH}",
    "*",
    "a && id || id | id > /tmp/x",
    "back\\slash",
    "",
    "  spaced  ",
    "-n",
    "ünïcødé ✓",
    "'",
    "''\"\"",
]


def sh(command: str, *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, timeout=10, cwd=cwd, check=False
    )


@pytest.mark.parametrize("payload", INJECTIONS)
def test_a_param_reaches_the_command_as_one_inert_word(payload: str, tmp_path: Path) -> None:
    command = render("printf '%s' {{ value }}; printf '|%s' {{ value }} done", {"value": payload})
    result = sh(command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{payload}|{payload}|done"
    assert list(tmp_path.iterdir()) == []  # no glob expanded, nothing redirected into a file


def test_an_injected_command_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in (
        f"; touch {marker}",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"\ntouch {marker}",
    ):
        command = render("echo {{ service }}", {"service": payload})
        assert sh(command).stdout == payload + "\n"
    assert not marker.exists()


def test_host_facts_are_quoted_too() -> None:
    context = operation_context(
        {}, host=HostFacts(hostname="dn1$(id)", labels={"role": "`id`"}), change_id=7, timeout=60
    )
    command = render("echo {{ host.hostname }} {{ host.labels.role }} {{ change.id }}", context)
    assert sh(command).stdout == "dn1$(id) `id` 7\n"


def test_a_list_becomes_one_quoted_word_per_item() -> None:
    command = render("printf '<%s>' {{ items }}", {"items": ["a b", "$(id)", 3]})
    assert sh(command).stdout == "<a b><$(id)><3>"


def test_raw_is_the_explicit_opt_out() -> None:
    assert sh(render("{{ command|raw }}", {"command": "echo one; echo two"})).stdout == "one\ntwo\n"
    # a filter after raw gives plain text back, which is quoted again
    assert render("{{ command|raw|upper }}", {"command": "a;b"}) == "'A;B'"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, "3"), (2.5, "2.5"), (True, "true"), (None, "''"), ({"b": 1}, "'{\"b\": 1}'")],
)
def test_scalar_rendering(value: Any, expected: str) -> None:
    assert render("{{ v }}", {"v": value}) == expected


def test_without_shell_nothing_is_quoted() -> None:
    assert render("{{ a }} {{ b }}", {"a": "x y", "b": [1, 2]}, shell=False) == "x y 1 2"


def test_an_undefined_variable_is_named_with_its_position() -> None:
    with pytest.raises(TemplateError) as info:
        render("systemctl restart \\\n  {{ servce }}", {"service": "x"}, path="run")
    assert str(info.value) == "run: undefined variable 'servce' at line 2, column 6"
    assert (info.value.line, info.value.column) == (2, 6)
    assert isinstance(info.value, SpecError)


def test_an_undefined_attribute_is_named() -> None:
    with pytest.raises(TemplateError, match=r"undefined attribute 'rakc' at line 1, column 14"):
        render("echo {{ host.rakc }}", {"host": {"rack": "r1"}})


def test_a_syntax_error_gives_the_line() -> None:
    with pytest.raises(TemplateError) as info:
        render("echo ok\necho {{ x", {"x": 1})
    assert info.value.line == 2
    assert "template syntax" in str(info.value)


def test_the_sandbox_refuses_internals() -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        render("{{ ''.__class__.__mro__ }}", {})
    with pytest.raises(TemplateError, match="cannot render"):
        render("{{ items.append(1) }}", {"items": []})  # immutable sandbox


def test_render_value_keeps_types_for_a_lone_reference() -> None:
    context = {"params": {"count": 3, "tags": ["a"]}, "host": {"hostname": "dn1"}}
    assert render_value("{{ params.count }}", context) == 3
    assert render_value(" {{params.tags}} ", context) == ["a"]
    assert render_value("dn={{ host.hostname }}; x", context) == "dn=dn1; x"  # text, unquoted
    assert render_value({"a": ["{{ params.count }}", 5]}, context) == {"a": [3, 5]}
    assert render_value(4, context) == 4
    with pytest.raises(TemplateError, match="undefined attribute 'cuont'"):
        render_value("{{ params.cuont }}", context)


def test_static_analysis_of_names() -> None:
    template = "{{ a }} {% for i in range(2) %}{{ i }}{{ params.x }}{{ params['y'] }}{% endfor %}"
    assert variables(template) == {"a", "params"}
    assert attributes(template, "params") == {"x", "y"}
    with pytest.raises(TemplateError):
        variables("{% if %}")


def test_operation_context_shape() -> None:
    host = HostFacts(hostname="dn1", rack="r1", cluster="c1", labels={"scheduler": "yarn"})
    context = operation_context({"service": "x"}, host=host, change_id=42, timeout=120.0)
    assert context == {
        "service": "x",
        "host": {
            "hostname": "dn1",
            "address": "dn1",
            "rack": "r1",
            "cluster": "c1",
            "labels": {"scheduler": "yarn"},
        },
        "change": {"id": 42},
        "timeout": 120,
    }


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 10**10 }}",
        "{{ 10**10 * 'x' }}",
        "{{ [0] * 10**9 }}",
        "{{ 9 ** 999999 }}",
        "{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}",
    ],
)
def test_a_template_cannot_exhaust_memory(template: str) -> None:
    with pytest.raises(TemplateError, match=r"cannot render: .*(limit|too large)"):
        render(template, {})


def test_ordinary_arithmetic_still_renders() -> None:
    assert render("{{ '-' * 3 }} {{ 2 ** 10 }} {{ [1, 2] * 2 }}", {}, shell=False) == (
        "--- 1024 1 2 1 2"
    )
