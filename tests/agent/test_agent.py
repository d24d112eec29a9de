"""The agent against a real server: what arrives, with which host/file/offset, and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.harness import (
    Backend,
    Server,
    Setup,
    make_backend,
    numbered,
    wait_for,
    write_lines,
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Backend:
    return make_backend(tmp_path_factory.mktemp("backend"), sqlite_template)


@pytest.fixture(scope="module")
def server(backend: Backend) -> Iterator[Server]:
    server = backend.server().start()
    yield server
    server.stop()


@pytest.fixture
def setup(backend: Backend, tmp_path: Path) -> Setup:
    return backend.setup(tmp_path)


def _offsets(lines: list[str]) -> list[int]:
    out, at = [], 0
    for line in lines:
        out.append(at)
        at += len(line.encode()) + 1
    return out


def test_two_files_then_a_file_created_later_matching_the_glob(
    setup: Setup, server: Server
) -> None:
    a, b, c = (setup.logs / f"{n}.log" for n in "abc")
    first_a, first_b = numbered("a", 0, 5), numbered("b", 0, 3)
    write_lines(a, first_a)
    write_lines(b, first_b)
    agent = setup.agent(
        server,
        setup.logs / "*.log",
        args=["--rescan-interval", "0.3", "--flush-interval", "0.1", "--label", "dc=eu1"],
    )
    agent.start()
    try:
        wait_for(lambda: setup.count() == 8, timeout=20, what="the first 8 lines")
        more_a = numbered("a", 5, 9)
        write_lines(a, more_a)
        write_lines(c, numbered("c", 0, 2))
        wait_for(lambda: setup.count() == 14, timeout=20, what="14 lines")
    finally:
        assert agent.stop() == 0, agent.output()
    rows = setup.rows()
    by_file: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_file.setdefault(str(row["file"]), []).append(row)
    assert len(by_file) == 3
    for path, expected in ((a, first_a + more_a), (b, first_b), (c, numbered("c", 0, 2))):
        (key,) = [k for k in by_file if k.startswith(f"{path}#")]
        ino = path.stat().st_ino
        assert key == f"{path}#{path.stat().st_dev}:{ino}:0"
        got = by_file[key]
        assert [r["message"] for r in got] == expected
        assert [r["offset"] for r in got] == _offsets(expected)
    assert {r["host"] for r in rows} == {"test-host"}
    assert {r["source"] for r in rows} == {setup.source}
    assert all(json.loads(r["labels"]) == {"dc": "eu1"} for r in rows)
    assert "stopped" in agent.output()


def test_once_resumes_from_its_checkpoint_and_sends_nothing_twice(
    setup: Setup, server: Server
) -> None:
    log = setup.logs / "app.log"
    write_lines(log, numbered("x", 0, 300))
    agent = setup.agent(server, log, args=["--once", "--batch-lines", "64"])
    assert agent.run() == 0, agent.output()
    assert setup.count() == 300
    write_lines(log, numbered("x", 300, 350))
    assert agent.run() == 0, agent.output()
    assert agent.run() == 0, agent.output()
    messages = [r["message"] for r in setup.rows()]
    assert messages == numbered("x", 0, 350)
    assert "50 lines sent in 1 requests: 50 stored, 0 already stored" in agent.output()
    assert "0 lines sent in 0 requests" in agent.output()


def test_long_lines_are_cut_and_bad_bytes_replaced(setup: Setup, server: Server) -> None:
    log = setup.logs / "odd.log"
    long = ("é" * 700).encode()  # 1400 bytes: pieces of at most 512, cut between characters
    log.write_bytes(b"first\r\n" + long + b"\n\n" + b"bad \xff\xfe byte\n" + b"no newline")
    agent = setup.agent(server, log, args=["--once", "--max-line-bytes", "512"])
    assert agent.run() == 0, agent.output()
    rows = setup.rows()
    assert [r["message"] for r in rows] == [
        "first",
        "é" * 256,
        "é" * 256,
        "é" * 188,
        "bad \ufffd\ufffd byte",
        "no newline",
    ]
    assert [r["offset"] for r in rows] == [0, 7, 519, 1031, 1409, 1421]


def test_from_end_skips_what_is_already_there(setup: Setup, server: Server) -> None:
    log = setup.logs / "big.log"
    write_lines(log, numbered("old", 0, 100))
    with log.open("a") as f:
        f.write("half a li")
    agent = setup.agent(
        server, log, args=["--from-end", "--flush-interval", "0.1", "--batch-lines", "10"]
    )
    agent.start()
    try:
        wait_for(lambda: "shipping 1 files" in agent.output(), timeout=20, what="start-up")
        with log.open("a") as f:
            f.write("ne\n")
        write_lines(log, numbered("new", 0, 3))
        wait_for(lambda: setup.count() == 4, timeout=20, what="the new lines")
    finally:
        agent.stop()
    assert [r["message"] for r in setup.rows()] == ["half a line", *numbered("new", 0, 3)]


def test_a_bad_token_stops_the_agent_with_exit_code_4(setup: Setup, server: Server) -> None:
    log = setup.logs / "app.log"
    write_lines(log, ["hello"])
    agent = setup.agent(server, log, args=["--once"])
    agent.env["FLEETOPS_INGEST_TOKEN"] = "fi_00000000_not-a-real-token"
    assert agent.run(timeout=30) == 4
    output = agent.output()
    assert "the server refused the ingest token (HTTP 401)" in output
    assert "fleetops logs token create" in output
    assert setup.count() == 0
    state = json.loads((setup.state / "state.json").read_text())
    assert [f["offset"] for f in state["files"].values()] == [0]


def test_a_second_agent_on_the_same_state_directory_is_refused(
    setup: Setup, server: Server
) -> None:
    log = setup.logs / "app.log"
    write_lines(log, ["one"])
    first = setup.agent(server, log)
    first.start()
    try:
        wait_for(lambda: "shipping 1 files" in first.output(), timeout=20, what="first agent")
        second = setup.agent(server, log, args=["--once"])
        assert second.run() == 1
        assert f"uses the state directory {setup.state}" in second.output()
    finally:
        assert first.stop() == 0


def test_the_agent_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, fleetops.cli, fleetops.agent.cli\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'fastapi', 'starlette', 'uvicorn', 'alembic') "
        "or m.startswith(('fleetops.models', 'fleetops.logs.ingest', 'fleetops.db'))]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
