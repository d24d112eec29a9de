"""Acceptance: SIGKILL the agent and the server, repeatedly, while lines are being written.

At-least-once delivery (checkpoint only after the server's acknowledgement) plus the server's
(token, file, offset) de-duplication must store every line exactly once: no gap, no duplicate.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from tests.agent.harness import make_backend, numbered, wait_for

TOTAL = 20_000
RATE = 2_000  # lines per second, across both files: ten seconds of writing


class Writer(threading.Thread):
    """Appends numbered lines to two files in turn, flushing every few lines."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(daemon=True)
        self.paths = paths
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            handles = [p.open("a", encoding="utf-8") for p in self.paths]
            for n, line in enumerate(numbered("c", 0, TOTAL)):
                handle = handles[n % len(handles)]
                handle.write(line + "\n")
                if n % 20 == 0:
                    for h in handles:
                        h.flush()
                    time.sleep(20 / RATE)
            for h in handles:
                h.close()
        except BaseException as exc:  # surfaced by the test
            self.error = exc


@pytest.mark.slow
def test_sigkill_agent_and_server_while_writing(tmp_path: Path, sqlite_template: Path) -> None:
    backend = make_backend(tmp_path / "backend", sqlite_template)
    setup = backend.setup(tmp_path / "agent")
    server = backend.server().start()
    agent = setup.agent(
        server,
        setup.logs / "*.log",
        args=[
            "--batch-lines", "100", "--flush-interval", "0.05", "--max-backoff", "0.5",
            "--rescan-interval", "0.5",
        ],
    )  # fmt: skip
    writer = Writer([setup.logs / "a.log", setup.logs / "b.log"])
    rng = random.Random(20261126)
    kills = {"agent": 0, "server": 0}
    try:
        agent.start()
        writer.start()
        for event in ("agent", "server", "agent", "both", "agent", "server", "agent"):
            time.sleep(rng.uniform(0.6, 1.4))
            if event in ("server", "both"):
                server.kill()
                kills["server"] += 1
            if event in ("agent", "both"):
                agent.kill()
                kills["agent"] += 1
                if event == "both":
                    time.sleep(0.3)
                    agent.start()  # comes up while the server is still down
            if event in ("server", "both"):
                server.start()
            if event == "agent":
                agent.start()
        writer.join(timeout=60)
        assert writer.error is None
        wait_for(lambda: setup.count() >= TOTAL, timeout=40, what=f"{TOTAL} lines", every=0.5)
        time.sleep(1.5)  # a resend that should not be stored would show up by now
    finally:
        agent.stop()
        server.stop()
    assert kills == {"agent": 5, "server": 3}
    rows = setup.rows()
    messages = [r["message"] for r in rows]
    assert len(messages) == TOTAL, f"{len(messages) - len(set(messages))} duplicates"
    assert set(messages) == set(numbered("c", 0, TOTAL))
    for key in {r["file"] for r in rows}:
        offsets = [r["offset"] for r in rows if r["file"] == key]
        assert offsets == sorted(set(offsets))
    assert len({r["file"] for r in rows}) == 2
    assert "cannot reach" in agent.output()  # the server outages were seen and ridden out
