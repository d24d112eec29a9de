"""Rotation while lines are being written: every line arrives exactly once.

The writer numbers its lines, so the stored messages are compared as a list per generation and as
a set overall: a gap or a duplicate shows up as a count or set difference.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

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

Rotate = Callable[[Path, IO[str]], IO[str]]


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


def _shift(path: Path) -> None:
    older = path.with_name(path.name + ".1")
    if older.exists():
        os.replace(older, path.with_name(path.name + ".2"))


def rename_rotation(path: Path, handle: IO[str]) -> IO[str]:
    """logrotate `create`: rename the file; the program writes a little more to the old file
    before it reopens the path (as it would until its SIGHUP arrives)."""
    _shift(path)
    os.rename(path, path.with_name(path.name + ".1"))
    return handle  # the writer reopens after a few more lines


def copytruncate(path: Path, handle: IO[str]) -> IO[str]:
    """logrotate `copytruncate`; the writer is paused meanwhile (lines written between the copy
    and the truncation would be lost to any reader)."""
    handle.flush()
    _shift(path)
    shutil.copyfile(path, path.with_name(path.name + ".1"))
    os.truncate(path, 0)
    return handle


class Writer(threading.Thread):
    """Appends `total` numbered lines at about `rate` lines/s, rotating every `every` lines."""

    def __init__(self, path: Path, total: int, rate: float, rotate: Rotate, every: int) -> None:
        super().__init__(daemon=True)
        self.path, self.total, self.rate, self.rotate, self.every = path, total, rate, rotate, every
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def _write(self) -> None:
        handle = self.path.open("a", encoding="utf-8")
        reopen_at = -1
        for n, line in enumerate(numbered("w", 0, self.total)):
            handle.write(line + "\n")
            if n == reopen_at:
                handle.close()
                handle = self.path.open("a", encoding="utf-8")
            if n % 40 == 0:
                handle.flush()
                time.sleep(40 / self.rate)
            if n and n % self.every == 0:
                handle.flush()
                handle = self.rotate(self.path, handle)
                if self.rotate is rename_rotation:
                    reopen_at = n + 25
        handle.close()


def _run_rotation(
    setup: Setup, server: Server, rotate: Rotate, pattern: str = "app.log"
) -> list[dict[str, object]]:
    total = 6000
    log = setup.logs / "app.log"
    log.touch()
    agent = setup.agent(
        server,
        setup.logs / pattern,
        args=[
            "--rotate-wait", "0.3", "--flush-interval", "0.1", "--batch-lines", "200",
            "--rescan-interval", "0.2",
        ],
    )  # fmt: skip
    agent.start()
    writer = Writer(log, total, rate=3000, rotate=rotate, every=900)
    try:
        wait_for(lambda: "shipping 1 files" in agent.output(), timeout=20, what="agent start")
        writer.start()
        writer.join(timeout=30)
        assert writer.error is None
        wait_for(lambda: setup.count() >= total, timeout=30, what=f"{total} lines")
        time.sleep(1.0)  # anything sent twice would arrive now
    finally:
        assert agent.stop() == 0, agent.output()
    rows = setup.rows()
    messages = [str(r["message"]) for r in rows]
    assert len(messages) == total, agent.output()[-3000:]
    assert set(messages) == set(numbered("w", 0, total))
    for key in {r["file"] for r in rows}:  # within a generation, in file order
        offsets = [r["offset"] for r in rows if r["file"] == key]
        assert offsets == sorted(offsets)
    return rows


def test_rename_rotation_while_writing(setup: Setup, server: Server) -> None:
    rows = _run_rotation(setup, server, rename_rotation)
    # One generation per inode: six rotations. A freed inode number that comes back for a new
    # file gets the next generation, never a key the server has seen.
    assert len({r["file"] for r in rows}) == 7


def test_rename_rotation_when_the_glob_also_matches_rotated_names(
    setup: Setup, server: Server
) -> None:
    # app.log.1 and app.log.2 are the same inodes under new names: followed, never read twice.
    rows = _run_rotation(setup, server, rename_rotation, pattern="app.log*")
    assert len({r["file"] for r in rows}) == 7


def test_copytruncate_while_writing(setup: Setup, server: Server) -> None:
    rows = _run_rotation(setup, server, copytruncate)
    log = setup.logs / "app.log"
    inode = f"{log}#{log.stat().st_dev}:{log.stat().st_ino}"
    # One inode; a generation per truncation.
    assert {str(r["file"]) for r in rows} == {f"{inode}:{g}" for g in range(7)}


def test_rotations_while_the_agent_is_down(setup: Setup, server: Server) -> None:
    renamed, truncated = setup.logs / "r.log", setup.logs / "t.log"
    write_lines(renamed, numbered("r", 0, 10))
    write_lines(truncated, numbered("t", 0, 10))
    agent = setup.agent(server, renamed, truncated, args=["--once"])
    assert agent.run() == 0, agent.output()
    # Down: both files get more lines, then rotate, then get new lines.
    write_lines(renamed, numbered("r", 10, 20))
    os.rename(renamed, renamed.with_name("r.log.1"))
    write_lines(renamed, numbered("r", 20, 25))
    write_lines(truncated, numbered("t", 10, 20))
    shutil.copyfile(truncated, truncated.with_name("t.log.1"))
    truncated.write_text("")
    write_lines(truncated, numbered("t", 20, 25))
    assert agent.run() == 0, agent.output()
    messages = [r["message"] for r in setup.rows()]
    assert sorted(m for m in messages if m.startswith("r")) == numbered("r", 0, 25)
    assert sorted(m for m in messages if m.startswith("t")) == numbered("t", 0, 25)
    assert "reading the rest of" in agent.output()
