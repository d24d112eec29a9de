"""A rolling change end to end: batches, failure threshold, pause, resume, abort with rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.changes.fleet import fleet_doc, load_fleet, wait_for, workflow
from tests.fixtures.app import Tokens


def start(client: TestClient, users: Tokens, work_dir: Path, **params: Any) -> int:
    assert (
        client.post(
            "/api/v1/workflows", json={"source": workflow()}, headers=users.headers("developer")
        ).status_code
        == 201
    )
    body = {
        "workflow": "append",
        "selector": "all",
        "title": "append a line",
        "params": {"dir": str(work_dir), **params},
    }
    change = client.post("/api/v1/changes", json=body, headers=users.headers("developer"))
    assert change.status_code == 201, change.text
    # A low-risk operation on the whole fleet is raised to high risk: two operators approve.
    assert (change.json()["risk"], change.json()["state"]) == ("high", "pending_approval")
    cid = int(change.json()["id"])
    for approver in ("operator", "admin"):
        vote = client.post(
            f"/api/v1/changes/{cid}/approve",
            json={"comment": "ok"},
            headers=users.headers(approver),
        )
        assert vote.status_code == 200, vote.text
    return cid


def detail(client: TestClient, users: Tokens, cid: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/changes/{cid}", headers=users.headers("viewer"))
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def wait_state(
    client: TestClient, users: Tokens, cid: int, *states: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the change is in one of `states`; on timeout, show where it is."""
    return wait_for(
        lambda: in_state(client, users, cid, *states),
        timeout=timeout,
        what=f"change {cid} to be {' or '.join(states)}",
        explain=lambda: detail(client, users, cid),
    )


def in_state(client: TestClient, users: Tokens, cid: int, *states: str) -> dict[str, Any] | None:
    d = detail(client, users, cid)
    return d if d["state"] in states else None


def test_rolling_change_pauses_at_threshold_resumes_and_rolls_back(
    engine_client: TestClient, db_url: str, users: Tokens, work_dir: Path
) -> None:
    client = engine_client
    load_fleet(db_url, fleet_doc(20, 4))
    cid = start(client, users, work_dir, fail_on="h006")
    paused = wait_state(client, users, cid, "paused")
    assert "max_failures" in paused["status"]
    failed = [h for h in paused["hosts"] if h["state"] == "failed"]
    assert [h["hostname"] for h in failed] == ["h006"]
    assert "exit 1" in failed[0]["error"]
    failed_batch = failed[0]["batch_index"]
    # Batches of 25 % = 5 hosts, one host per rack at most twice (4 racks, 5 hosts a batch).
    batches: dict[int, list[str]] = {}
    for h in paused["hosts"]:
        batches.setdefault(h["batch_index"], []).append(h["hostname"])
    assert sorted(len(b) for b in batches.values()) == [5, 5, 5, 5]
    # Nothing after the failed batch has started.
    later = [h for h in paused["hosts"] if h["batch_index"] > failed_batch]
    assert later
    assert all(h["state"] == "pending" for h in later)
    done_files = sorted(p.name for p in work_dir.iterdir())
    assert "h006" not in done_files

    op = users.headers("operator")
    assert client.post(f"/api/v1/changes/{cid}/resume", json={}, headers=op).status_code == 200
    finished = wait_state(client, users, cid, "failed", "succeeded")
    assert finished["state"] == "failed"  # one host failed, under the resumed threshold
    assert len(list(work_dir.iterdir())) == 19
    for path in work_dir.iterdir():
        assert path.read_text() == f"{cid}\n"

    # Retry the failed host only: it still fails (same fail_on), and the others are untouched.
    retried = client.post(f"/api/v1/changes/{cid}/retry", json={}, headers=op)
    assert retried.status_code == 200
    wait_state(client, users, cid, "failed", "paused")
    for path in work_dir.iterdir():
        assert path.read_text() == f"{cid}\n"


def test_abort_rolls_back_done_hosts(
    engine_client: TestClient, db_url: str, users: Tokens, work_dir: Path
) -> None:
    client = engine_client
    load_fleet(db_url, fleet_doc(20, 4))
    cid = start(client, users, work_dir, fail_on="h011")
    wait_state(client, users, cid, "paused")
    assert any(work_dir.iterdir())
    op = users.headers("operator")
    assert client.post(f"/api/v1/changes/{cid}/abort", json={}, headers=op).status_code == 200
    end = wait_state(client, users, cid, "rolled_back", "aborted")
    assert end["state"] == "rolled_back"
    assert list(work_dir.iterdir()) == []
    assert {h["state"] for h in end["hosts"]} <= {"rolled_back", "cancelled"}


def test_logs_show_step_output(
    engine_client: TestClient, db_url: str, users: Tokens, work_dir: Path
) -> None:
    client = engine_client
    load_fleet(db_url, fleet_doc(4, 2))
    cid = start(client, users, work_dir)
    done = wait_state(client, users, cid, "succeeded", "failed", "paused", timeout=20)
    assert done["state"] == "succeeded", done
    steps = client.get(
        f"/api/v1/changes/{cid}/steps", params={"host": "h001"}, headers=users.headers("viewer")
    ).json()
    assert [(s["phase"], s["state"]) for s in steps] == [
        ("check", "unsatisfied"),
        ("run", "succeeded"),
    ]
    assert steps[1]["exit_code"] == 0


def test_retry_from_a_threshold_pause_and_abort_without_rollback(
    engine_client: TestClient, db_url: str, users: Tokens, work_dir: Path
) -> None:
    client = engine_client
    load_fleet(db_url, fleet_doc(20, 4))
    stop_workflow = (
        workflow()
        .replace("on_abort: rollback", "on_abort: stop")
        .replace("name: append\n", "name: append-stop\n")
    )
    assert (
        client.post(
            "/api/v1/workflows", json={"source": stop_workflow}, headers=users.headers("developer")
        ).status_code
        == 201
    )
    body = {
        "workflow": "append-stop",
        "selector": "all",
        "title": "t",
        "params": {"dir": str(work_dir), "fail_on": "h006"},
    }
    change = client.post("/api/v1/changes", json=body, headers=users.headers("developer")).json()
    cid = change["id"]
    for approver in ("operator", "admin"):
        client.post(f"/api/v1/changes/{cid}/approve", json={}, headers=users.headers(approver))
    wait_state(client, users, cid, "paused")
    op = users.headers("operator")
    # Retry is offered by the pause: it re-runs the failed host (which fails again and pauses).
    retried = client.post(f"/api/v1/changes/{cid}/retry", json={}, headers=op)
    assert retried.status_code == 200, retried.text
    again = wait_state(client, users, cid, "paused")
    assert [h["hostname"] for h in again["hosts"] if h["state"] == "failed"] == ["h006"]
    done = {p.name for p in work_dir.iterdir()}
    aborted = client.post(f"/api/v1/changes/{cid}/abort", json={}, headers=op)
    assert aborted.json()["state"] == "aborted"  # on_abort: stop — nothing is rolled back
    assert {p.name for p in work_dir.iterdir()} == done
