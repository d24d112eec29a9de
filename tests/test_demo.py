"""`fleetops demo` as a user starts it: what the terminal shows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.server import free_port, running_server

DEMO = [sys.executable, "-m", "fleetops", "demo"]


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    env["FLEETOPS_DATA_DIR"] = str(tmp_path)
    return env


def test_the_demo_prints_its_url_and_logins_last_and_no_line_per_request(tmp_path: Path) -> None:
    output = tmp_path / "demo.out"
    command = ("demo", "--hosts", "200", "--racks", "10")
    with running_server(demo_env(tmp_path), command=command, output=output, timeout=120) as url:
        for _ in range(5):
            httpx.get(f"{url}/login", timeout=5)
        time.sleep(1)
    lines = output.read_text().splitlines()
    running = next(i for i, line in enumerate(lines) if "Uvicorn running on" in line)
    banner = next(i for i, line in enumerate(lines) if f"open {url}/" in line)
    logins = [i for i, line in enumerate(lines) if "password:" in line]
    assert running < banner < min(logins), lines
    assert not [line for line in lines if '"GET /' in line], lines  # no access log unless asked


def test_a_fleet_too_small_for_the_demo_is_refused_with_what_to_do(tmp_path: Path) -> None:
    small = subprocess.run(
        [*DEMO, "--hosts", "20", "--racks", "2", "--port", str(free_port())],
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert small.returncode == 2, small.stderr
    assert "Traceback" not in small.stderr
    assert "the demo cannot run: no free target" in small.stderr
    assert "give it more --hosts and --racks" in small.stderr
