"""`fleetops logs parse` as a process: standard input, empty files, what it loads."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

PARSE = [sys.executable, "-m", "fleetops", "logs", "parse", "--content-only"]


def test_parse_reads_standard_input_arriving_slowly() -> None:
    process = subprocess.Popen(
        [*PARSE, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None
    process.stdin.write(b"disk 1 failed\r\n")
    process.stdin.flush()
    time.sleep(0.5)
    process.stdin.write(b"disk 2 failed\ndisk 3 failed")  # the last line without its newline
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [(r["line"], r["template"], r["params"]) for r in records] == [
        (1, "disk <*> failed", ["1"]),
        (2, "disk <*> failed", ["2"]),
        (3, "disk <*> failed", ["3"]),
    ]


def test_parse_prints_nothing_for_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    result = subprocess.run([*PARSE, str(empty)], capture_output=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_the_logs_commands_load_without_the_api_client() -> None:
    """`logs parse` runs offline: loading its commands loads no HTTP, database or web stack."""
    heavy = ["httpx", "pydantic", "sqlalchemy", "fastapi", "fleetops.kit.cli"]
    code = f"import sys, fleetops.logs.cli; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


def test_a_plain_parse_runs_without_the_cli_framework_and_prints_the_same(tmp_path: Path) -> None:
    """A valid `logs parse` line is run before Typer (and pydantic, Rich) load; what it prints is
    what the Typer command prints, and anything else still goes to the Typer command."""
    log = tmp_path / "app.log"
    log.write_text("".join(f"job {i} finished on node-{i % 7} in {i * 3} ms\n" for i in range(50)))
    probe = (
        "import runpy, sys; sys.argv = ['fleetops', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('fleetops', run_name='__main__')\n"
        "finally:\n    print(sorted(m for m in ('typer', 'pydantic', 'rich') if m in sys.modules),"
        " file=sys.stderr)\n"
    )
    for args in (
        ["--content-only", str(log)],
        ["-o", "jsonl", str(log), "--content-only"],
        ["--output=jsonl", "--content-only", str(log)],
    ):
        fast = subprocess.run(
            [sys.executable, "-c", probe, "logs", "parse", *args], capture_output=True, text=True
        )
        assert fast.returncode == 0, fast.stderr
        assert fast.stderr == "[]\n"
        through_typer = subprocess.run(
            [sys.executable, "-c", "from fleetops.cli import main; main()", "logs", "parse", *args],
            capture_output=True,
            text=True,
        )
        assert through_typer.returncode == 0, through_typer.stderr
        assert fast.stdout == through_typer.stdout
        assert len(fast.stdout.splitlines()) == 50
    for args in (["--help"], ["-o", "csv", str(log)], [str(tmp_path)], [str(log), str(log)]):
        slow = subprocess.run(
            [sys.executable, "-c", probe, "logs", "parse", *args], capture_output=True, text=True
        )
        assert "typer" in slow.stderr.splitlines()[-1], (args, slow.stderr)
        assert slow.returncode == (0 if args == ["--help"] else 2), (args, slow.stderr)
