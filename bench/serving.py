"""A real `fleetops serve` process for the benchmarks that talk to one over HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the server helper lives with the test fixtures

from tests.fixtures.server import server_process  # noqa: E402


@contextmanager
def serve(database_url: str, data_dir: Path, **settings: str) -> Iterator[tuple[str, int]]:
    """Start `fleetops serve` on a free port with these `FLEETOPS_*` settings (and none from the
    caller's environment), wait for /api/health; yield its URL and pid; stop it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    env.update(FLEETOPS_DATABASE_URL=database_url, FLEETOPS_DATA_DIR=str(data_dir), **settings)
    with server_process(env, output=data_dir / "server.log", timeout=60) as (url, proc):
        yield url, proc.pid
