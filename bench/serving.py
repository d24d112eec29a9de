"""A real `fleetops serve` process for the benchmarks that talk to one over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(database_url: str, data_dir: Path, **settings: str) -> Iterator[tuple[str, int]]:
    """Start `fleetops serve` on a free port with these `FLEETOPS_*` settings (and none from the
    caller's environment), wait for /api/health; yield its URL and pid; stop it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    env.update(
        FLEETOPS_DATABASE_URL=database_url,
        FLEETOPS_DATA_DIR=str(data_dir),
        FLEETOPS_PORT=str(port),
        **settings,
    )
    log_path = data_dir / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetops", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
