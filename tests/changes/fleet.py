"""A small fleet, site operations and workflows for change-management tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.inventory.document import (
    ClusterDoc,
    DatacenterDoc,
    HostDoc,
    InventoryDoc,
    RackDoc,
    RegionDoc,
)
from tests.fixtures.waiting import wait_for  # noqa: F401  (re-exported)

APPEND_OP = """
name: append_line
version: 1
description: >-
  Append the change id to the host's own file (fails on the host named fail_on; waits while
  gate/<hostname> exists, so a test decides when a host finishes).
risk: low
idempotent: false
timeout: 20
params:
  dir: {type: string, required: true}
  fail_on: {type: string, default: none}
  hold: {type: number, default: 0}
  gate: {type: string, default: none}
run: >-
  while [ -e {{ gate }}/{{ host.hostname }} ]; do sleep 0.05; done;
  sleep {{ hold }};
  [ {{ host.hostname }} != {{ fail_on }} ] && echo {{ change.id }} >> {{ dir }}/{{ host.hostname }}
check: "grep -qx {{ change.id }} {{ dir }}/{{ host.hostname }}"
rollback: "rm -f {{ dir }}/{{ host.hostname }}"
"""

APPEND_WORKFLOW = """
name: append
version: 1
description: Append a line per host, rack-aware, a quarter at a time.
params:
  dir: {type: string, required: true}
  fail_on: {type: string, default: none}
  hold: {type: number, default: 0}
  gate: {type: string, default: none}
stages:
  - name: main
    steps:
      - operation: append_line
        params:
          dir: "{{ params.dir }}"
          fail_on: "{{ params.fail_on }}"
          hold: "{{ params.hold }}"
          gate: "{{ params.gate }}"
    strategy:
      batch: {batch}
      max_failures: 1
      on_failure: pause
      on_abort: rollback
      spread_by: rack
"""


def workflow(batch: str = "25%") -> str:
    return APPEND_WORKFLOW.replace("{batch}", batch)


def write_ops(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "append_line.yaml").write_text(APPEND_OP)
    return directory


def fleet_doc(
    hosts: int,
    racks: int,
    *,
    executor: str = "local",
    address: str = "",
    port: int = 22,
    user: str = "root",
) -> InventoryDoc:
    names = [f"h{i:03d}" for i in range(1, hosts + 1)]
    return InventoryDoc(
        regions=[RegionDoc(name="lab")],
        datacenters=[DatacenterDoc(name="dc1", region="lab")],
        clusters=[ClusterDoc(name="c1")],
        racks=[RackDoc(name=f"r{r}", datacenter="dc1", cluster="c1") for r in range(1, racks + 1)],
        hosts=[
            HostDoc(
                hostname=n,
                address=address,
                ssh_port=port,
                ssh_user=user,
                rack=f"r{i % racks + 1}",
                cluster="c1",
                labels={"executor": executor},
            )
            for i, n in enumerate(names)
        ],
    )


def load_fleet(db_url: str, doc: InventoryDoc) -> None:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        apply_document(session, AuditContext(actor="test"), doc)
    engine.dispose()


RESTART_WORKFLOW = """
name: restart
version: 1
description: Restart nginx (a medium-risk built-in operation).
stages:
  - name: main
    steps:
      - operation: service_restart
        params: {service: nginx}
    strategy: {batch: 10%}
"""


def approve(post: Callable[..., Any], users: Any, change: dict[str, Any]) -> None:
    """Approve a pending change as two distinct operators (enough for any risk)."""
    if change["state"] != "pending_approval":
        return
    for approver in ("operator", "admin")[: change["approvals_required"]]:
        response = post(
            f"/api/v1/changes/{change['id']}/approve",
            json={"comment": "ok"},
            headers=users.headers(approver),
        )
        assert response.status_code == 200, response.text


SECRET_OP = """
name: with_secret
version: 1
description: Use a secret token (which must never be shown or recorded).
risk: low
timeout: 10
params:
  token: {type: string, required: true, secret: true}
run: 'read -r token; test -n "$token"'
stdin: "{{ token }}"  # a secret travels on stdin, never in the command an approver reads
"""

SECRET_WORKFLOW = """
name: secretive
version: 1
description: Pass a secret down to an operation.
params:
  token: {type: string, required: true, secret: true}
stages:
  - name: main
    steps:
      - operation: with_secret
        params: {token: "{{ params.token }}"}
    strategy: {batch: 100%}
"""
