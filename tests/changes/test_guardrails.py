"""Global guardrails: the out-of-service budget is shared by all running changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleetops.adapters.local import LocalExecutor
from fleetops.db import make_engine
from fleetops.main import create_app
from fleetops.models import HostRun, StepRun
from tests.changes.fleet import approve, fleet_doc, load_fleet, wait_for, workflow
from tests.fixtures.app import Tokens, make_settings, seed_users


@pytest.fixture
def budget_client(db_url: str, tmp_path: Path, ops_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(
        db_url,
        tmp_path / "data",
        operations_dir=ops_dir,
        engine_tick_seconds=0.05,
        executor="local",
        budget_rack=0.4,
        budget_cluster=1.0,
    )
    with TestClient(create_app(settings, executors={"local": LocalExecutor()})) as client:
        yield client


def _max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
        key=lambda e: (e[0], e[1]),
    )
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def test_two_changes_never_exceed_the_rack_budget_together(
    budget_client: TestClient, db_url: str, tmp_path: Path, work_dir: Path
) -> None:
    client = budget_client
    users: Tokens = seed_users(db_url)
    load_fleet(db_url, fleet_doc(10, 1))  # one rack of 10 hosts; budget 40 % = 4 hosts
    assert (
        client.post(
            "/api/v1/workflows",
            json={"source": workflow(batch="100%")},
            headers=users.headers("developer"),
        ).status_code
        == 201
    )
    ids = []
    for selector in ("h00[1-3]", "h00[4-6]"):  # 30 % of the rack each
        body = {
            "workflow": "append",
            "selector": selector,
            "title": "drain-like",
            "params": {"dir": str(work_dir), "hold": 1.0},
        }
        response = client.post("/api/v1/changes", json=body, headers=users.headers("developer"))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    for cid in ids:  # approve both only now, so that they start together
        approve(
            client.post,
            users,
            client.get(f"/api/v1/changes/{cid}", headers=users.headers("viewer")).json(),
        )
    waited = wait_for(
        lambda: any(
            "out-of-service budget"
            in client.get(f"/api/v1/changes/{i}", headers=users.headers("viewer")).json()["status"]
            for i in ids
        ),
        what="one change to wait for the budget",
    )
    assert waited
    for cid in ids:
        wait_for(
            lambda cid=cid: (
                client.get(f"/api/v1/changes/{cid}", headers=users.headers("viewer")).json()[
                    "state"
                ]
                == "succeeded"
            ),
            what=f"change {cid}",
        )
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(StepRun.started_at, StepRun.finished_at)
            .join(HostRun, HostRun.id == StepRun.host_run_id)
            .where(StepRun.phase == "run")
        ).all()
    engine.dispose()
    assert len(rows) == 6
    assert _max_overlap([(r[0], r[1]) for r in rows]) <= 4
    assert len(list(work_dir.iterdir())) == 6
