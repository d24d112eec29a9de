"""`fleetops demo` and `fleetops serve` as a user starts them: what the terminal shows."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.fixtures.server import free_port

DEMO = [sys.executable, "-m", "fleetops", "demo"]


def test_the_demo_prints_its_url_and_logins_last_and_no_line_per_request(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    env["FLEETOPS_DATA_DIR"] = str(tmp_path)
    with tempfile.TemporaryFile("w+") as out:
        demo = subprocess.Popen(
            [*DEMO, "--hosts", "200", "--racks", "10", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if demo.poll() is not None:
                    out.seek(0)
                    raise AssertionError(f"the demo exited: {out.read()[-3000:]}")
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            for _ in range(5):
                httpx.get(f"{url}/login", timeout=5)
            time.sleep(1)
        finally:
            demo.terminate()
            demo.wait(timeout=60)
        out.seek(0)
        lines = out.read().splitlines()
    running = next(i for i, line in enumerate(lines) if "Uvicorn running on" in line)
    banner = next(i for i, line in enumerate(lines) if f"open http://127.0.0.1:{port}/" in line)
    logins = [i for i, line in enumerate(lines) if "password:" in line]
    assert running < banner < min(logins), lines
    assert not [line for line in lines if '"GET /' in line], lines  # no access log unless asked


def test_a_fleet_too_small_for_the_demo_is_refused_with_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    env["FLEETOPS_DATA_DIR"] = str(tmp_path)
    small = subprocess.run(
        [*DEMO, "--hosts", "20", "--racks", "2", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert small.returncode == 2, small.stderr
    assert "Traceback" not in small.stderr
    assert "the demo cannot run: no free target" in small.stderr
    assert "give it more --hosts and --racks" in small.stderr
