"""The root CLI loads a command's module only when that command runs."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleetops.cli import Commands

SERVER_SIDE = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "httpx", "asyncssh")
# What `fleetops --help` must not load; a command's own start-up may load pydantic, as typer's
# option parsing does.
HEAVY = (*SERVER_SIDE, "pydantic", "pydantic_settings", "jinja2", "numpy", "yaml", "psycopg")
REPORT_MODULES = """
import contextlib, io, json, sys
from fleetops.cli import main
sys.argv = ["fleetops", *sys.argv[1:]]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main()
print(json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", REPORT_MODULES, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def fleetops_beyond_the_root(modules: list[str]) -> set[str]:
    """The fleetops packages loaded besides the root CLI and the kit."""
    return {
        ".".join(m.split(".")[:2])
        for m in modules
        if m.startswith("fleetops.") and m != "fleetops.cli" and not m.startswith("fleetops.kit")
    }


def test_help_loads_no_domain_and_no_heavy_library() -> None:
    modules = modules_loaded_by("--help")
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    assert fleetops_beyond_the_root(modules) == set()


@pytest.mark.parametrize(
    ("args", "domain"),
    [(("host", "--help"), "fleetops.inventory"), (("logs", "parse", "--help"), "fleetops.logs")],
    ids=["host --help", "logs parse --help"],
)
def test_a_command_loads_its_own_domain_only(args: tuple[str, ...], domain: str) -> None:
    modules = modules_loaded_by(*args)
    assert [m for m in modules if m.split(".")[0] in SERVER_SIDE] == []
    assert fleetops_beyond_the_root(modules) == {domain}


def as_listed(command: Any) -> tuple[str, bool, object, str | None]:
    """What help and completion show of a command in its group's list."""
    text = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
    panel = getattr(command, "rich_help_panel", None) or None  # as typer reads it: unset is falsy
    return text, command.hidden, command.deprecated, panel


@pytest.mark.parametrize("name", list(Commands.lazy))
def test_every_command_loads_and_is_listed_as_it_describes_itself(name: str) -> None:
    group = Commands()
    listed = as_listed(group.commands[name])
    command = group.load(name)
    assert command.name == name
    assert listed == as_listed(command)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("nosuch", "No such command 'nosuch'."), ("hots", "No such command 'hots'. Did you mean")],
)
def test_an_unknown_command_is_a_usage_error(typed: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fleetops", typed, "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("words", "expected"),
    [("fleetops h", ["host"]), ("fleetops host ", ["list", "show", "delete", "import", "export"])],
)
def test_completion_lists_commands_and_descends_into_one(words: str, expected: list[str]) -> None:
    env = {
        **os.environ,
        "_FLEETOPS_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    fleetops = Path(sys.executable).with_name("fleetops")
    result = subprocess.run(
        [str(fleetops)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == expected
