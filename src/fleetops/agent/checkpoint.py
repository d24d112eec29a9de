"""Checkpoints: where each file generation resumes, persisted only after the server acknowledged.

A crash can only lose the progress since the last write, never skip a line: what was sent but not
written here is sent again, and the server drops the copies by (token, file, offset). The file is
replaced atomically (temporary file, fsync, rename, fsync of the directory), so it is always
either the old or the new checkpoint, never a torn mix. A lock file keeps two agents from sharing
one state directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetops.agent.exceptions import AgentError

STATE_VERSION = 1
FINGERPRINT_BYTES = 256  # how much of a file's start identifies it beside its inode
MAX_REMEMBERED_INODES = 10_000


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/fleetops-agent`, else `~/.local/state/fleetops-agent`."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fleetops-agent"


def fingerprint(data: bytes) -> str:
    """A short digest of a file's first bytes."""
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass
class Entry:
    """One file generation: a (device, inode) that has not been truncated since it was first seen.

    `offset` is the next byte to read once everything acknowledged is skipped. Fields after
    `drained` live in memory only."""

    key: str  # the `file` value sent to the server; stable for the generation's life
    path: str
    dev: int
    ino: int
    generation: int
    offset: int
    fp: str  # fingerprint of the first `fp_len` bytes
    fp_len: int
    truncated: bool = False  # the inode now holds a later generation; a copy may hold the rest
    drained: bool = False  # rotated away and read to its end: a different start is a new file
    emitted: int = field(default=0, compare=False)  # end of the last line handed to the shipper
    active: bool = field(default=False, compare=False)  # a reader is reading it now

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "dev": self.dev,
            "ino": self.ino,
            "generation": self.generation,
            "offset": self.offset,
            "fingerprint": self.fp,
            "fingerprint_bytes": self.fp_len,
            "truncated": self.truncated,
            "drained": self.drained,
        }

    @classmethod
    def from_json(cls, key: str, raw: dict[str, Any]) -> Entry:
        offset = int(raw["offset"])
        return cls(
            key=key,
            path=str(raw["path"]),
            dev=int(raw["dev"]),
            ino=int(raw["ino"]),
            generation=int(raw["generation"]),
            offset=offset,
            fp=str(raw["fingerprint"]),
            fp_len=int(raw["fingerprint_bytes"]),
            truncated=bool(raw.get("truncated", False)),
            drained=bool(raw.get("drained", False)),
            emitted=offset,
        )


@dataclass
class State:
    """Every generation the agent follows, and the last generation number used per inode (kept
    after a file is gone, so a reused inode never gets a key the server already knows)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)  # "dev:ino" -> last generation
    existed: bool = False  # loaded from disk (not the first run)

    def next_generation(self, dev: int, ino: int) -> int:
        used = [e.generation for e in self.entries.values() if (e.dev, e.ino) == (dev, ino)]
        last = max([*used, self.generations.get(f"{dev}:{ino}", -1)])
        return last + 1

    def add(self, entry: Entry) -> None:
        self.entries[entry.key] = entry
        self.generations.pop(f"{entry.dev}:{entry.ino}", None)
        self.generations[f"{entry.dev}:{entry.ino}"] = entry.generation

    def drop(self, entry: Entry) -> None:
        self.entries.pop(entry.key, None)
        inode = f"{entry.dev}:{entry.ino}"
        self.generations[inode] = max(self.generations.get(inode, -1), entry.generation)
        while len(self.generations) > MAX_REMEMBERED_INODES:  # oldest first (insertion order)
            self.generations.pop(next(iter(self.generations)))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "files": {key: e.to_json() for key, e in self.entries.items()},
            "generations": self.generations,
        }


class Checkpoints:
    """The state file in a state directory, held under an exclusive lock while the agent runs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "state.json"
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Take the directory's lock, or fail naming the process that holds it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise AgentError(f"cannot create the state directory {self.directory}: {exc}") from None
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AgentError(
                f"another fleetops agent (pid {holder}) uses the state directory "
                f"{self.directory}; give each agent its own --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        for stale in self.directory.glob(".state.json.*.tmp"):  # left by a crash mid-write
            with contextlib.suppress(OSError):
                stale.unlink()

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def load(self) -> State:
        """The saved state; an empty one on the first run."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return State()
        except (OSError, ValueError) as exc:
            raise AgentError(
                f"the state file {self.path} is unreadable ({exc}); move it away to start over "
                "(files are then read again from the start and the server drops what it has)"
            ) from None
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise AgentError(f"the state file {self.path} has an unknown format")
        entries = {key: Entry.from_json(key, e) for key, e in raw.get("files", {}).items()}
        generations = {str(k): int(v) for k, v in raw.get("generations", {}).items()}
        return State(entries=entries, generations=generations, existed=True)

    def save(self, state: State) -> None:
        """Replace the state file atomically and durably."""
        data = json.dumps(state.to_json(), separators=(",", ":"), sort_keys=True).encode()
        tmp = self.directory / f".state.json.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def __enter__(self) -> Checkpoints:
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.unlock()
