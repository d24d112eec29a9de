"""Applying recommendations: the `scheduler_requests` commands rendered exactly, names with
shell syntax refused, the Kubernetes template run for real over SSH against a stand-in
`kubectl` (and rolled back to exactly what it found), and a report's accepted recommendations
submitted as one change that another operator approves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.adapters.ssh import SshConfig, SshExecutor
from fleetops.audit.service import AuditContext
from fleetops.changes.operations import SpecError, load_library, validate_params
from fleetops.changes.templating import HostFacts, operation_context, render
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.inventory.document import HostDoc, InventoryDoc
from fleetops.main import create_app
from tests.analytics.resources.test_reports import decide, report_body, save
from tests.changes.test_operations import fake_tool
from tests.fixtures.app import Tokens, make_settings, seed_users
from tests.fixtures.sshd import SshServer

LIBRARY = load_library()


def phase(operation: str, name: str, *, change_id: int = 7, **params: Any) -> str:
    """One phase of an operation, rendered as the engine renders it (params validated first)."""
    spec = LIBRARY.get(operation)
    assert spec is not None
    context = operation_context(
        validate_params(spec.params, params),
        host=HostFacts(hostname="sched-01"),
        change_id=change_id,
        timeout=spec.timeout,
    )
    call = getattr(spec, name).resolve({})
    assert isinstance(call, str)
    return render(call, context)


def test_the_kubernetes_commands_are_rendered_exactly() -> None:
    run = phase(
        "scheduler_requests",
        "run",
        kind="kubernetes",
        requests="batch/deployment/spark-m/main:500:1024,batch/statefulset/web/app:-:2048",
    )
    lines = run.splitlines()
    assert lines[0] == "# fleetops-scheduler requests kubernetes change=7"
    assert lines[3] == (
        "kubectl -n batch set resources deployment/spark-m -c main "
        "--requests=cpu=500m,memory=1024Mi || exit 1"
    )
    assert lines[5] == (
        "kubectl -n batch set resources statefulset/web -c app --requests=memory=2048Mi || exit 1"
    )
    assert "kubectl -n batch get deployment/spark-m -o 'jsonpath=" in lines[2]
    assert len(lines) == 6


def test_the_yarn_commands_are_rendered_exactly() -> None:
    run = phase("scheduler_requests", "run", kind="yarn", requests="root.batch.M:2:3072")
    assert run.splitlines()[-1] == (
        "yarn schedulerconf -update "
        "root.batch.M:maximum-allocation-vcores=2,maximum-allocation-mb=3072 || exit 1"
    )
    rollback = phase("scheduler_requests", "rollback", kind="yarn", requests="root.batch.M:2:-")
    assert 'yarn schedulerconf -update "$q:maximum-allocation-vcores=$vcores,' in rollback


@pytest.mark.parametrize(
    "requests",
    [
        "batch/deployment/web;reboot/main:1:1",
        "batch/deployment/$(id)/main:1:1",
        "batch/deployment/web/main:1:1 --kubeconfig=/tmp/x",
        "-n/deployment/web/main:1:1",
        "batch/pods/web/main:1:1",
        "root.batch.M`id`:1:1",
        "root.batch.M:1:1,",
        "root.batch.M:0:1",
        "root.batch.M:1.5:1",
        "root.batch.M:1:1\nreboot",
        "",
    ],
)
def test_names_and_figures_with_anything_else_are_refused(requests: str) -> None:
    spec = LIBRARY.get("scheduler_requests")
    assert spec is not None
    with pytest.raises(SpecError, match="requests"):
        validate_params(spec.params, {"kind": "kubernetes", "requests": requests})


# `kubectl get KIND/NAME -o jsonpath=...` prints the container's requests the stand-in holds;
# `kubectl set resources` records them. Every call's argv is logged by fake_tool.
KUBECTL = r"""
state="$(dirname "$0")/requests"
case $3 in
  get) cat "$state" 2>/dev/null || printf '250m|512Mi' ;;
  set) echo "$8" | sed 's/^--requests=//; s/cpu=//; s/,memory=/|/' > "$state" ;;
  *) exit 2 ;;
esac
"""


@pytest.fixture
def ssh_host(sshd: SshServer) -> tuple[SshExecutor, Any]:
    executor = SshExecutor(SshConfig(key_path=sshd.key_path, known_hosts=sshd.known_hosts))
    return executor, sshd.hosts(1)[0]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_template_runs_over_ssh_and_rolls_back_exactly(
    ssh_host: tuple[SshExecutor, Any], tmp_path: Path
) -> None:
    executor, target = ssh_host
    tools = tmp_path / "bin"
    tools.mkdir()
    fake_tool(tools, "kubectl", KUBECTL)
    params = {
        "kind": "kubernetes",
        "requests": "batch/deployment/spark-m/main:500:1024",
        "state_dir": str(tmp_path / "state"),
    }
    path = f"PATH={tools}:$PATH; export PATH\n"
    try:
        for name in ("run", "run", "rollback"):  # a retried run keeps what the first one found
            done = await executor.run(
                target, path + phase("scheduler_requests", name, **params), timeout=30
            )
            assert done.exit_code == 0, (name, done.stderr, done.error)
    finally:
        await executor.close()
    calls = (tools / "calls.log").read_text().splitlines()
    get = (
        "kubectl -n batch get deployment/spark-m -o jsonpath="
        '{.spec.template.spec.containers[?(@.name=="main")].resources.requests.cpu}|'
        '{.spec.template.spec.containers[?(@.name=="main")].resources.requests.memory}'
    )
    assert calls == [
        get,
        "kubectl -n batch set resources deployment/spark-m -c main "
        "--requests=cpu=500m,memory=1024Mi",
        "kubectl -n batch set resources deployment/spark-m -c main "
        "--requests=cpu=500m,memory=1024Mi",
        "kubectl -n batch set resources deployment/spark-m -c main "
        "--requests=cpu=250m,memory=512Mi",
    ]
    assert (tools / "requests").read_text().strip() == "250m|512Mi"  # as it was found


# --- the change ----------------------------------------------------------------------------------


def namenode(db_url: str) -> None:
    """The scheduler client (label role=namenode, the default) among a dozen workers: a change
    on under a tenth of the fleet keeps the operation's risk (medium, one approval)."""
    hosts = [HostDoc(hostname="nn-01", labels={"role": "namenode"})]
    hosts += [HostDoc(hostname=f"wk-{i:02d}", labels={"role": "worker"}) for i in range(1, 13)]
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        apply_document(session, AuditContext(actor="test"), InventoryDoc(hosts=hosts))
    engine.dispose()


@pytest.fixture
def sized_client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with memory convertible: a normalised unit is 0.96 GB (96 GB machines)."""
    settings = make_settings(
        db_url, tmp_path / "data", engine_enabled=False, resources_gb_per_memory_unit=0.96
    )
    with TestClient(create_app(settings)) as client:
        yield client


def accepted_report(
    client: TestClient, tokens: Tokens, tmp_path: Path, *groups: tuple[str, str]
) -> tuple[int, dict[tuple[str, str], int]]:
    report_id = save(client, tokens, report_body(tmp_path)).json()["id"]
    kept = client.get(f"/api/v1/resources/reports/{report_id}", headers=tokens.headers("viewer"))
    ids = {(r["group"], r["resource"]): r["id"] for r in kept.json()["recommendations"]}
    for group in groups:
        assert decide(client, tokens, ids[group], "accept", "operator").status_code == 200
    return report_id, ids


def apply(client: TestClient, tokens: Tokens, report_id: int, role: str = "operator") -> Any:
    return client.post(f"/api/v1/resources/reports/{report_id}/apply", headers=tokens.headers(role))


def test_memory_is_not_applied_without_its_unit(
    client: TestClient, tokens: Tokens, tmp_path: Path, db_url: str
) -> None:
    namenode(db_url)
    report_id, _ = accepted_report(client, tokens, tmp_path)
    nothing = apply(client, tokens, report_id)
    assert nothing.status_code == 409
    assert "no accepted recommendation" in nothing.json()["detail"]
    report_id, _ = accepted_report(client, tokens, tmp_path, ("A|0.5|0.5", "mem"))
    refused = apply(client, tokens, report_id)
    assert refused.status_code == 409
    assert "set resources_gb_per_memory_unit" in refused.json()["detail"]


def test_accepted_recommendations_become_one_change_another_operator_approves(
    sized_client: TestClient, db_url: str, tmp_path: Path
) -> None:
    client, tokens = sized_client, seed_users(db_url)
    namenode(db_url)
    report_id, ids = accepted_report(
        client,
        tokens,
        tmp_path,
        ("A|0.5|0.5", "cpu"),
        ("A|0.5|0.5", "mem"),
        ("B|0.5|0.5", "cpu"),
    )
    assert apply(client, tokens, report_id, role="viewer").status_code == 403
    assert apply(client, tokens, report_id, role="developer").status_code == 403
    answer = apply(client, tokens, report_id)
    assert answer.status_code == 201, answer.text
    change = answer.json()
    assert (change["workflow"], change["state"], change["risk"], change["host_count"]) == (
        "apply-resource-requests",
        "pending_approval",
        "medium",
        1,
    )
    # KRR: 0.2 core -> 1 vcore (rounded up); 0.23 units x 0.96 GB x 1024 = 226.1 -> 227 MB
    assert change["params"] == {
        "kind": "yarn",
        "requests": "root.batch.A:1:227,root.batch.B:1:-",
    }
    preview = client.get(
        f"/api/v1/changes/{change['id']}/preview", headers=tokens.headers("viewer")
    ).json()
    assert (
        "yarn schedulerconf -update "
        "root.batch.A:maximum-allocation-vcores=1,maximum-allocation-mb=227 || exit 1"
    ) in preview[0]["runs"]
    kept = client.get(f"/api/v1/resources/reports/{report_id}", headers=tokens.headers("viewer"))
    applied = [r for r in kept.json()["recommendations"] if r["status"] == "applied"]
    assert {r["id"] for r in applied} == {
        ids[("A|0.5|0.5", "cpu")],
        ids[("A|0.5|0.5", "mem")],
        ids[("B|0.5|0.5", "cpu")],
    }
    assert {r["change_id"] for r in applied} == {change["id"]}
    # an applied recommendation is not reconsidered while its change stands
    late = decide(client, tokens, ids[("A|0.5|0.5", "cpu")], "reject", "admin")
    assert late.status_code == 409
    assert "applied" in late.json()["detail"]
    vote = {"comment": "checked the queue's peaks"}
    own = client.post(
        f"/api/v1/changes/{change['id']}/approve", json=vote, headers=tokens.headers("operator")
    )
    assert own.status_code in (403, 409), own.text  # the requester never approves
    approved = client.post(
        f"/api/v1/changes/{change['id']}/approve", json=vote, headers=tokens.headers("admin")
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] in ("approved", "scheduled")


def test_a_rejected_change_frees_its_recommendations(
    sized_client: TestClient, db_url: str, tmp_path: Path
) -> None:
    client, tokens = sized_client, seed_users(db_url)
    namenode(db_url)
    report_id, ids = accepted_report(client, tokens, tmp_path, ("A|0.5|0.5", "cpu"))
    change = apply(client, tokens, report_id).json()
    rejected = client.post(
        f"/api/v1/changes/{change['id']}/reject",
        json={"comment": "not this week"},
        headers=tokens.headers("admin"),
    )
    assert rejected.status_code == 200, rejected.text
    again = decide(client, tokens, ids[("A|0.5|0.5", "cpu")], "reject", "operator")
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["change_id"]) == ("rejected", None)
