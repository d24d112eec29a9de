"""Answers that are not 200: a full server (429), a body too large (413), a second agent on the
same state directory. Each starts its own server, configured to refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.harness import make_backend, numbered, write_lines


@pytest.mark.slow
def test_429_backoff_still_delivers_everything(tmp_path: Path, sqlite_template: Path) -> None:
    backend = make_backend(tmp_path / "backend", sqlite_template)
    setup = backend.setup(tmp_path / "agent")
    server = backend.server(FLEETOPS_INGEST_RATE_LINES="500").start()
    try:
        log = setup.logs / "busy.log"
        write_lines(log, numbered("r", 0, 2500))
        agent = setup.agent(server, log, args=["--once", "--batch-lines", "500"])
        assert agent.run(timeout=50) == 0, agent.output()
    finally:
        server.stop()
    assert [r["message"] for r in setup.rows()] == numbered("r", 0, 2500)
    assert "the server answered 429" in agent.output()


def test_413_splits_the_batch_and_cuts_a_line_too_large_alone(
    tmp_path: Path, sqlite_template: Path
) -> None:
    backend = make_backend(tmp_path / "backend", sqlite_template)
    setup = backend.setup(tmp_path / "agent")
    server = backend.server(FLEETOPS_INGEST_MAX_BODY_BYTES="2048").start()
    try:
        log = setup.logs / "big.log"
        write_lines(log, [*numbered("s", 0, 60), "x" * 3000, *numbered("s", 60, 70)])
        agent = setup.agent(server, log, args=["--once"])
        assert agent.run(timeout=50) == 0, agent.output()
    finally:
        server.stop()
    messages = [r["message"] for r in setup.rows()]
    assert messages[:60] == numbered("s", 0, 60)
    assert messages[61:] == numbered("s", 60, 70)
    assert set(messages[60]) == {"x"}
    assert 256 <= len(messages[60]) < 2048
    output = agent.output()
    assert "splitting it" in output
    assert "cutting it to" in output
