"""`fleetops demo` as a user starts it: what the terminal shows."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from contextlib import closing
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


def logged_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    login = {"username": username, "password": f"{username}-demo-pass", "csrf": csrf.group(1)}
    assert client.post("/login", data={**login, "next": "/"}).status_code in (200, 303)
    return client


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def right_sizing(url: str) -> tuple[str, str]:
    """An operator accepts the demo report's largest memory cut that changes its queue, applies
    the report, the admin approves; the target and the MB the scheduler's quotas then show."""
    with closing(logged_in(url, "operator")) as operator:
        [summary] = wait_for(
            lambda: operator.get("/api/v1/resources/reports").json()["items"],
            timeout=120,
            every=1,
            what="the demo's resource report (made once the server is up)",
        )
        report = operator.get(f"/api/v1/resources/reports/{summary['id']}").json()
        quotas = wait_for(
            lambda: operator.get("/api/v1/resources/quotas").json()["quotas"],
            timeout=90,
            every=1,
            what="the scheduler's quotas",
        )
        held = {q["target"]: q["memory"] for q in quotas}
        rec, mb = next(
            (r, str(math.ceil(round(r["recommendation"] * 0.96 * 1024, 6))))
            for r in report["recommendations"]
            if r["resource"] == "mem" and r["target"] in held
            and held[r["target"]] != str(math.ceil(round(r["recommendation"] * 0.96 * 1024, 6)))
        )  # fmt: skip
        page = operator.get("/analytics/resources")
        accepted = operator.post(
            f"/analytics/resources/recommendations/{rec['id']}/accept",
            data={"csrf": csrf(page), "report": str(summary["id"])},
        )
        assert accepted.status_code == 303, accepted.text
        applied = operator.post(
            f"/analytics/resources/{summary['id']}/apply", data={"csrf": csrf(page)}
        )
        assert applied.status_code == 303, applied.text
        change = int(applied.headers["location"].rsplit("/", 1)[1])
    with closing(logged_in(url, "admin")) as admin:
        page = admin.get(f"/changes/{change}")
        assert f"maximum-allocation-mb={mb}" in page.text  # what the approver reads
        voted = admin.post(
            f"/changes/{change}/action",
            data={"action": "approve", "comment": "right-sized", "csrf": csrf(page)},
        )
        assert voted.status_code == 303, voted.text
        wait_for(
            lambda: admin.get(f"/api/v1/changes/{change}").json()["state"] == "succeeded",
            timeout=90,
            every=1,
            what=f"change {change} to succeed",
        )
        view = admin.get("/api/v1/resources/quotas").json()
        assert view["change_id"] == change
        assert {q["target"]: q["memory"] for q in view["quotas"]}[rec["target"]] == mb
        shown = admin.get("/analytics/resources").text
        assert f'<td class="mono">{rec["target"]}</td>' in shown
        assert f'<td class="num">{mb}</td>' in shown
    return rec["target"], mb


REMEDIATION_RULE = "drain-predicted-disk-failure"


def remediation(url: str) -> list[dict[str, Any]]:
    """The dry run's proposals over the demo fleet (the predictor's flagged drives placed in its
    hosts); then the admin enables the rule on /remediation and it drains hosts within its
    budget, through pre-approved isolation changes; the enabled actions."""
    with closing(logged_in(url, "admin")) as admin:

        def actions(mode: str) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = admin.get(
                "/api/v1/policies/actions", params={"mode": mode, "limit": 1000}
            ).json()["items"]
            return found

        proposed = wait_for(
            lambda: [a for a in actions("dry_run") if a["status"] == "proposed"],
            timeout=180,
            every=1,
            what="the dry run's proposals (the predictions come once the server is up)",
        )
        assert {a["plan"]["workflow"] for a in proposed} == {"isolate-host"}
        assert all(a["change_id"] is None for a in proposed)  # a dry run submits nothing
        [rule] = [r for r in admin.get("/api/v1/policies").json() if r["name"] == REMEDIATION_RULE]
        assert len(proposed) <= rule["per_hour"]  # the rest are held by the budget
        page = admin.get("/remediation")
        assert "would have done" in page.text
        switched = admin.post(
            f"/remediation/{REMEDIATION_RULE}/mode", data={"mode": "enabled", "csrf": csrf(page)}
        )
        assert switched.status_code == 303, switched.text
        submitted = wait_for(
            lambda: [a for a in actions("enabled") if a["status"] == "submitted"],
            timeout=60,
            every=1,
            what="the enabled rule's drains",
        )
        assert 1 <= len(submitted) <= rule["hosts_out"]
        for action in submitted:
            change = admin.get(f"/api/v1/changes/{action['change_id']}").json()
            assert change["requester"] == f"policy:remediation:{REMEDIATION_RULE}"
            device = admin.get(f"/api/v1/devices/{action['entity']}").json()
            assert device["state"] in ("draining", "isolated", "in_repair")
        return submitted


def test_the_demo_prints_its_url_and_logins_last_and_no_line_per_request(tmp_path: Path) -> None:
    output = tmp_path / "demo.out"
    command = ("demo", "--hosts", "200", "--racks", "10")
    with running_server(demo_env(tmp_path), command=command, output=output, timeout=120) as url:
        for _ in range(5):
            httpx.get(f"{url}/login", timeout=5)
        view = inode_view(url)
        right_sizing(url)
        remediation(url)
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
