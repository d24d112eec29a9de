"""What the live screen reads of changes, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from fleetops.changes.repository import live_changes
from fleetops.models import Approval, ChangeRequest, HostRun


def change(session: Session, title: str, state: str, minutes_ago: int, **more: object) -> int:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    row = ChangeRequest(
        title=title,
        selector="all",
        risk="medium",
        state=state,
        requester="dev",
        host_count=4,
        approvals_required=2,
        created_at=at,
        started_at=at if state == "running" else None,
        **more,
    )
    session.add(row)
    session.flush()
    return row.id


def test_the_newest_waiting_first_and_the_running_with_their_progress(session: Session) -> None:
    older = change(session, "older", "pending_approval", 30)
    newer = change(session, "newer", "pending_approval", 5)
    change(session, "done", "succeeded", 60)
    running = change(session, "rolling", "running", 10)
    session.add(Approval(change_id=newer, approver="op", decision="approve"))
    for index, state in enumerate(("succeeded", "succeeded", "failed", "running")):
        session.add(
            HostRun(
                change_id=running,
                stage_index=0,
                batch_index=index,
                hostname=f"h{index}",
                state=state,
            )
        )
    session.commit()

    found = live_changes(session, limit=1)
    assert found["waiting"] == 2  # all that wait, though one is listed
    [shown] = found["approvals"]
    assert (shown["id"], shown["votes"], shown["needed"]) == (newer, 1, 2)
    assert older not in [c["id"] for c in found["approvals"]]
    [under_way] = found["changes"]
    assert under_way["title"] == "rolling"
    assert (under_way["done"], under_way["failed"], under_way["total"]) == (2, 1, 4)
