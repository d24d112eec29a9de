"""Acceptance: a bad disk on the simulated fleet goes all the way round, with nobody but the repair
shop in the loop.

Kernel I/O errors arrive as logs → the diagnosis finds them (a `hardware_error` finding) → the
health policy isolates the host (suspect, then a drain change the engine runs) → isolated, a repair
ticket is opened and its webhook reaches a real HTTP server here, signed → the repair shop reports
progress through the status endpoint → `repaired` starts the verification change → it passes →
the host serves again, on probation, and the ticket is verified. Every step is in the audit log.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import or_, select

from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.devices.repairs.service import RUNGS
from fleetops.devices.repairs.webhooks import verify
from fleetops.models import AuditRecord
from fleetops.sim.executor import SimulatedExecutor
from tests.devices.factory import hardware_findings
from tests.fixtures.app import Tokens, seed_users, simulated_fleet_client
from tests.fixtures.waiting import policy_passes
from tests.logs.ingest_helpers import ingest_token

SECRET = "shared-webhook-secret"
T = TypeVar("T")


class Receiver:
    """A ticket system's webhook endpoint: records every POST; answers 500 to the first one, so
    the retry is exercised too."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.refused == 0:
                    outer.refused += 1
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.posts.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fleetops"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()


def wait(
    probe: Callable[[], T], what: str, timeout: float = 60, explain: Callable[[], Any] = str
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {explain()}")


@pytest.fixture
def executor() -> SimulatedExecutor:
    return SimulatedExecutor(latency=0.01, seed=3)


@pytest.fixture
def loop_app(
    db_url: str, tmp_path: Path, receiver: Receiver, executor: SimulatedExecutor
) -> Iterator[tuple[TestClient, Tokens]]:
    users = seed_users(db_url)
    with simulated_fleet_client(
        db_url,
        tmp_path / "data",
        executor,
        hosts=40,
        racks=4,
        health_policy_interval=0.3,
        repair_webhook_url=receiver.url,
        repair_webhook_secret=SECRET,
    ) as client:
        yield client, users


def disk_errors(host: str, now: datetime) -> list[dict[str, str]]:
    """What a dying disk writes to the kernel log, then one ordinary line that moves time on."""
    lines = [
        {
            "ts": (now - timedelta(seconds=40 - i)).isoformat(),
            "host": host,
            "message": f"kernel: blk_update_request: I/O error, dev sdb, sector {2048 + 8 * i} "
            "op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
        }
        for i in range(4)
    ]
    lines.append({"ts": now.isoformat(), "host": "h-other", "message": "systemd: Started cron."})
    return lines


def test_a_bad_disk_goes_round_the_repair_loop(
    loop_app: tuple[TestClient, Tokens], receiver: Receiver, db_url: str
) -> None:
    client, users = loop_app
    viewer, op = users.headers("viewer"), users.headers("operator")
    host = client.get("/api/v1/hosts", params={"limit": 1}, headers=viewer).json()["items"][0][
        "hostname"
    ]

    def device() -> dict[str, Any]:
        found: dict[str, Any] = client.get(f"/api/v1/devices/{host}", headers=viewer).json()
        return found

    token = ingest_token(client, users)
    now = datetime.now(UTC)
    assert (
        client.post("/api/v1/logs", json=disk_errors(host, now), headers=token).status_code == 200
    )
    # Time moves on in the log stream: the windows holding the errors close, detectors run.
    for seconds in (10, 20):
        line = [
            {
                "ts": (now + timedelta(seconds=seconds)).isoformat(),
                "host": "h-other",
                "message": "systemd: Started cron.",
            }
        ]
        client.post("/api/v1/logs", json=line, headers=token)

    finding = wait(
        lambda: next(
            (
                f
                for f in client.get(
                    "/api/v1/findings", params={"entity": host}, headers=viewer
                ).json()["items"]
                if f["kind"] == "hardware_error"
            ),
            None,
        ),
        "the disk finding",
    )
    assert finding["details"]["signature"] == "disk_io"

    isolated = wait(
        lambda: (d := device())["state"] == "isolated" and d,
        "isolation",
        explain=lambda: (device(), client.get("/api/v1/changes", headers=viewer).json()),
    )
    history = client.get(f"/api/v1/devices/{host}/history", headers=viewer).json()["items"]
    moves = [(t["from_state"], t["to_state"], t["actor"]) for t in reversed(history)]
    assert moves == [
        ("in_service", "suspect", "policy:disk-io-errors"),
        ("suspect", "draining", "policy:disk-io-errors"),
        ("draining", "isolated", "policy:lifecycle"),
    ]
    assert all(finding["id"] in t["evidence"] for t in history)
    assert isolated["change_id"] is None  # the drain is over
    changes = client.get("/api/v1/changes", params={"limit": 5}, headers=viewer).json()["items"]
    [drain] = [c for c in changes if c["title"] == f"Isolate {host}"]
    assert drain["state"] == "succeeded"

    [ticket] = client.get("/api/v1/repairs", params={"host": host}, headers=viewer).json()["items"]
    assert (ticket["status"], ticket["action"], ticket["escalated"]) == ("open", "reboot", False)
    assert ticket["evidence"] == [finding["id"]]

    # The ticket system heard of it: signed, after a retry (it refused the first POST).
    opened = wait(lambda: receiver.events(), "the ticket.opened webhook", timeout=30)
    assert opened[0]["event"] == "ticket.opened"
    assert opened[0]["ticket"]["id"] == ticket["id"]
    headers, body = receiver.posts[0]
    assert verify(SECRET.encode(), body, headers["X-Fleetops-Signature"])
    assert not verify(b"another secret", body, headers["X-Fleetops-Signature"])
    assert receiver.refused == 1

    # More trouble shows up while it is out of service: it describes the same broken hardware.
    hardware_findings(db_url, host, signature="smart_degraded")

    # The repair shop works on it through the status endpoint.
    url = f"/api/v1/repairs/{ticket['id']}/status"
    assert client.post(url, json={"status": "diagnosing"}, headers=viewer).status_code == 403
    started = client.post(
        url,
        json={"status": "diagnosing", "external_ref": "OPS-4711", "note": "on the bench"},
        headers=op,
    )
    assert started.status_code == 200, started.text
    assert device()["state"] == "in_repair"
    bad = client.post(url, json={"status": "verified"}, headers=op)
    assert bad.status_code == 409
    assert "repaired" in bad.json()["allowed"]
    assert client.post(url, json={"colour": "red"}, headers=op).status_code == 422
    done = client.post(url, json={"status": "repaired", "note": "reseated sdb"}, headers=op)
    assert done.status_code == 200, done.text

    back = wait(
        lambda: (d := device())["state"] == "in_service" and d,
        "return to service",
        explain=lambda: (device(), client.get("/api/v1/changes", headers=viewer).json()),
    )
    assert back["probation_until"] is not None
    probation = datetime.fromisoformat(back["probation_until"]) - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < probation <= timedelta(days=7)
    final = client.get(f"/api/v1/repairs/{ticket['id']}", headers=viewer).json()
    assert final["status"] == "verified"
    assert final["external_ref"] == "OPS-4711"
    history = client.get(f"/api/v1/devices/{host}/history", headers=viewer).json()["items"]
    assert [t["to_state"] for t in reversed(history)][3:] == [
        "in_repair",
        "verifying",
        "in_service",
    ]

    events = wait(
        lambda: (e := receiver.events())[-1]["event"] == "ticket.verified" and e,
        "the ticket.verified webhook",
        timeout=30,
    )
    assert [e["event"] for e in events] == [
        "ticket.opened",
        "ticket.updated",
        "ticket.updated",
        "ticket.verified",
    ]
    # Every step is audited, by whoever took it.
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        actions = session.execute(
            select(AuditRecord.action, AuditRecord.actor)
            .where(
                or_(
                    (AuditRecord.entity_type == "device") & (AuditRecord.entity_id == host),
                    (AuditRecord.entity_type == "repair")
                    & (AuditRecord.entity_id == str(ticket["id"])),
                )
            )
            .order_by(AuditRecord.id)
        ).all()
    engine.dispose()
    assert [a for a, _ in actions] == [
        "device.suspect",
        "device.draining",
        "device.isolated",
        "repair.open",
        "repair.update",
        "device.in_repair",
        "repair.update",
        "device.verifying",
        "device.in_service",
        "repair.verified",
    ]
    assert dict(actions)["repair.open"] == "policy:lifecycle"
    # The findings from before the repair were closed by the passed verification, so the
    # policy does not send the machine straight back.
    closed = client.get(f"/api/v1/findings/{finding['id']}", headers=viewer).json()
    assert closed["status"] == "resolved"
    live = client.get(
        "/api/v1/findings", params={"entity": host, "status": "open"}, headers=viewer
    ).json()
    assert live["items"] == []
    policy_passes(client)
    assert device()["state"] == "in_service"


def test_failed_verification_climbs_the_ladder_and_probation_escalates(
    loop_app: tuple[TestClient, Tokens], executor: SimulatedExecutor, db_url: str
) -> None:
    client, users = loop_app
    viewer, op = users.headers("viewer"), users.headers("operator")
    hosts = client.get("/api/v1/hosts", params={"limit": 40}, headers=viewer).json()["items"]
    # Two hosts of different racks and clusters, so the safety limits let both out.
    first = hosts[0]
    second = next(
        h for h in hosts if h["rack"] != first["rack"] and h["cluster"] != first["cluster"]
    )
    broken, flaky = first["hostname"], second["hostname"]

    def state(host: str) -> str:
        return str(client.get(f"/api/v1/devices/{host}", headers=viewer).json()["state"])

    def tickets(host: str) -> list[dict[str, Any]]:
        page = client.get("/api/v1/repairs", params={"host": host}, headers=viewer).json()
        return list(reversed(page["items"]))  # oldest first

    def has_tickets(host: str, count: int) -> bool:
        return len(tickets(host)) == count

    def repaired(ticket: dict[str, Any]) -> None:
        url = f"/api/v1/repairs/{ticket['id']}/status"
        answer = client.post(url, json={"status": "repaired"}, headers=op)
        assert answer.status_code == 200, answer.text

    # The broken host's hardware stays broken: every verification fails.
    executor.hardware_faults.add(broken)
    hardware_findings(db_url, broken)
    wait(lambda: state(broken) == "isolated", "isolation of the broken host")
    for rung, count in (("reboot", 2), ("reimage", 3)):
        current = tickets(broken)[-1]
        assert (current["action"], current["status"]) == (rung, "open")
        repaired(current)
        wait(partial(has_tickets, broken, count), f"the rung after {rung}")
        assert tickets(broken)[-2]["status"] == "failed"
        assert state(broken) == "in_repair"
    repaired(tickets(broken)[-1])
    wait(lambda: tickets(broken)[-1]["status"] == "failed", "the last rung to fail")
    assert [t["action"] for t in tickets(broken)] == list(RUNGS)
    assert state(broken) == "in_repair"  # nothing left to try: a person decides
    proposal = client.get(
        "/api/v1/findings", params={"entity": broken, "kind": "retirement_proposed"}, headers=viewer
    ).json()["items"]
    assert len(proposal) == 1
    assert "proposed for retirement" in proposal[0]["title"]

    # The flaky host passes verification after a reboot, then fails again on probation.
    hardware_findings(db_url, flaky)
    wait(lambda: state(flaky) == "isolated", "isolation of the flaky host")
    repaired(tickets(flaky)[-1])
    wait(lambda: state(flaky) == "in_service", "the flaky host back in service")
    # Seen after the settling time (a report inside it may be about lines from before the repair).
    hardware_findings(db_url, flaky, signature="fs_error", later=timedelta(minutes=11))
    wait(lambda: len(tickets(flaky)) == 2, "a second ticket for the flaky host")
    again = tickets(flaky)[-1]
    assert (again["action"], again["escalated"]) == ("reimage", True)
    repeat = client.get(
        "/api/v1/findings", params={"entity": flaky, "kind": "repeat_failure"}, headers=viewer
    ).json()["items"]
    assert len(repeat) == 1
    history = client.get(f"/api/v1/devices/{flaky}/history", headers=viewer).json()["items"]
    assert "on probation" in history[1]["reason"]  # the move to draining says why
