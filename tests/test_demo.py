"""`fleetops demo` as a user starts it: what the terminal shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.server import free_port, running_server
from tests.fixtures.waiting import wait_for

DEMO = [sys.executable, "-m", "fleetops", "demo"]


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_")}
    env["FLEETOPS_DATA_DIR"] = str(tmp_path)
    return env


def inode_view(url: str) -> dict[str, Any]:
    """The demo's inode provisioning as its viewer sees it, once every host has answered."""
    with httpx.Client(base_url=url, timeout=10) as client:
        form = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        login = {"username": "viewer", "password": "viewer-demo-pass", "csrf": csrf.group(1)}
        client.post("/login", data={**login, "next": "/"})

        def collected() -> dict[str, Any]:
            view: dict[str, Any] = client.get("/api/v1/storage/inodes").json()
            return view if view["hosts"] >= 195 else {}  # of 201: the simulator fails a few

        found: dict[str, Any] = wait_for(collected, timeout=90, every=1, what="the hosts' facts")
        return found


def test_the_demo_prints_its_url_and_logins_last_and_no_line_per_request(tmp_path: Path) -> None:
    output = tmp_path / "demo.out"
    command = ("demo", "--hosts", "200", "--racks", "10")
    with running_server(demo_env(tmp_path), command=command, output=output, timeout=120) as url:
        for _ in range(5):
            httpx.get(f"{url}/login", timeout=5)
        view = inode_view(url)
        time.sleep(1)
    # the demo's hosts answered the read-only collection as their models' disks: datanodes'
    # 12 TB data disks keep inode tables and a 5 % reserve the analysis offers back
    models = {m["key"]: m for m in view["by_model"]}
    assert models["dn-gen3"]["inode_saving_bytes"] > 0
    assert models["dn-gen3"]["reserved_saving_bytes"] > 0
    assert view["filesystems"][0]["model"] == "dn-gen3"
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
