"""Run commands on this machine: for `localhost`, tests and local tools such as ansible-playbook.

Also home to `OutputCapture`, the output cap every executor applies, so the SSH executor keeps
exactly the same bytes and flags as the local one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Protocol

from fleetops.changes.executor import MAX_OUTPUT, Result, Target

CHUNK = 64 * 1024
KILL_GRACE_S = 1.0  # after a kill, how long the pipes may take to close


class ByteReader(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class OutputCapture:
    """Keep the first `limit` bytes of a stream and drain the rest, so the writer never blocks."""

    def __init__(self, limit: int = MAX_OUTPUT) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    async def drain(self, reader: ByteReader) -> None:
        """Read until end of stream."""
        while chunk := await reader.read(CHUNK):
            room = self.limit - len(self.data)
            if len(chunk) > room:
                self.truncated = True
                chunk = chunk[:room]
            self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def timeout_error(timeout: float) -> str:
    return f"timeout after {timeout:g} s"


class LocalExecutor:
    """Runs commands under /bin/sh on this machine; the target is informational."""

    name = "local"

    def __init__(self, *, shell: str = "/bin/sh") -> None:
        self.shell = shell

    async def run(
        self, target: Target, command: str, *, timeout: float, stdin: str | None = None
    ) -> Result:
        """Run `command`; on timeout kill its whole process group, keeping the partial output."""
        start = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_shell(
                command,
                executable=self.shell,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, so a timeout kills children too
            )
        except OSError as exc:
            return Result(exit_code=None, error=f"cannot start {self.shell}: {exc}")
        assert proc.stdout is not None  # both are pipes, as asked above
        assert proc.stderr is not None
        out, err = OutputCapture(), OutputCapture()
        readers = asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr))
        try:
            async with asyncio.timeout(timeout):
                await _feed(proc.stdin, stdin)
                await readers
                code = await proc.wait()
        except TimeoutError:
            await _kill_group(proc, readers)
            return result_from(None, out, err, start, error=timeout_error(timeout))
        except BaseException:  # cancelled by the engine: leave nothing running
            await _kill_group(proc, readers)
            raise
        return result_from(code, out, err, start)

    async def put_file(
        self, target: Target, path: str, content: bytes, *, mode: int = 0o644, timeout: float
    ) -> Result:
        """Write the file through a temporary file in the same directory, then rename it."""
        start = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.to_thread(write_atomic, Path(path), content, mode)
        except TimeoutError:
            return Result(exit_code=None, error=timeout_error(timeout), duration_s=_since(start))
        except OSError as exc:
            return Result(
                exit_code=1, stderr=f"{path}: {exc.strerror or exc}\n", duration_s=_since(start)
            )
        return Result(exit_code=0, duration_s=_since(start))

    async def close(self) -> None:
        """Nothing to release: every command is its own process."""


def write_atomic(path: Path, content: bytes, mode: int) -> None:
    """Readers see the old file or the new one, never a partial write."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def _feed(writer: asyncio.StreamWriter | None, data: str | None) -> None:
    if writer is None or data is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it need not read it all
        writer.write(data.encode())
        await writer.drain()
    writer.close()


async def _kill_group(
    proc: asyncio.subprocess.Process, readers: asyncio.Future[tuple[None, None]]
) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    # A child that left the group may still hold the pipes open: stop waiting for it.
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        async with asyncio.timeout(KILL_GRACE_S):
            await asyncio.shield(readers)
    readers.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await proc.wait()


def _since(start: float) -> float:
    return time.monotonic() - start


def result_from(
    code: int | None, out: OutputCapture, err: OutputCapture, start: float, *, error: str = ""
) -> Result:
    """The Result of a command whose output was captured, started at `start` (monotonic)."""
    return Result(
        exit_code=code,
        stdout=out.text(),
        stderr=err.text(),
        duration_s=_since(start),
        error=error,
        truncated=out.truncated or err.truncated,
    )
