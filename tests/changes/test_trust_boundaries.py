"""A developer trying to reach past the server or past an approver's eyes, over the REST API.

Server-side requests: an `http_check` is read-only, so it is approved without review; it runs on
the host and may only name the host, so a URL aimed at cloud metadata or another machine is
refused at registration or submission (422, audited). Secrets: a secret parameter may not reach
command text, so an approver never approves `***`; every change shows its commands as they will
run on a sample host of each stage.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.adapters.local import LocalExecutor
from fleetops.main import create_app
from fleetops.sim.executor import SimulatedExecutor
from tests.changes.fleet import SECRET_OP, approve, fleet_doc, load_fleet, wait_for
from tests.fixtures.app import Tokens, make_settings, refusal_counts, seed_users

METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
SECRET = "hunter2-do-not-print"


@pytest.fixture
def client(db_url: str, tmp_path: Path, ops_dir: Path) -> Iterator[TestClient]:
    (ops_dir / "with_secret.yaml").write_text(SECRET_OP)
    settings = make_settings(
        db_url, tmp_path / "data", operations_dir=ops_dir, engine_enabled=False
    )
    with TestClient(create_app(settings, executors={"simulated": SimulatedExecutor()})) as c:
        yield c


@pytest.fixture
def users(client: TestClient, db_url: str) -> Tokens:
    load_fleet(db_url, fleet_doc(6, 2, executor="simulated", address="10.9.0.1"))
    return seed_users(db_url)


def workflow(name: str, params: str, steps: str) -> str:
    return f"""name: {name}
version: 1
description: {name}
params:
{params}
stages:
  - name: main
    steps:
{steps}
"""


def register(client: TestClient, users: Tokens, source: str) -> Any:
    return client.post(
        "/api/v1/workflows", json={"source": source}, headers=users.headers("developer")
    )


def submit(client: TestClient, users: Tokens, name: str, **params: Any) -> Any:
    body = {"workflow": name, "title": "t", "selector": "h00[1-3]", "params": params}
    return client.post("/api/v1/changes", json=body, headers=users.headers("developer"))


def refusals(client: TestClient, users: Tokens) -> dict[tuple[str, str, str], int]:
    return dict(refusal_counts(client, users.headers("admin"), outcome="invalid"))


def test_an_http_check_cannot_be_aimed_off_its_host(client: TestClient, users: Tokens) -> None:
    literal = workflow(
        "meta", "  {}", f'      - operation: http_check\n        params: {{url: "{METADATA}"}}'
    )
    refused = register(client, users, literal)
    assert refused.status_code == 422, refused.text
    assert "params.url" in refused.json()["detail"]

    templated = workflow(
        "probe",
        "  url: {type: string, required: true}",
        '      - operation: http_check\n        params: {url: "{{ params.url }}"}',
    )
    assert register(client, users, templated).status_code == 201
    for url in (METADATA, "http://10.9.0.2:8080/admin", "http://localhost@169.254.169.254/"):
        answer = submit(client, users, "probe", url=url)
        assert answer.status_code == 422, answer.text
        assert "does not match pattern" in answer.json()["detail"]
    assert refusals(client, users) == {
        ("developer", "/api/v1/changes", "invalid"): 3,
        ("developer", "/api/v1/workflows", "invalid"): 1,
    }
    listed = client.get("/api/v1/changes", headers=users.headers("admin")).json()
    assert listed["total"] == 0  # nothing stored

    # The legitimate use: a check of the host's own endpoint, from the host, approved by policy.
    ok = submit(client, users, "probe", url="http://{host}:9100/metrics")
    assert ok.status_code == 201, ok.text
    assert ok.json()["state"] == "approved"
    [first, *_] = client.get(
        f"/api/v1/changes/{ok.json()['id']}/preview", headers=users.headers("viewer")
    ).json()
    assert first["operation"] == "http_check"
    assert first["hostname"] == "h001"
    assert "curl" in first["runs"]
    assert "url='http://{host}:9100/metrics'" in first["runs"]
    assert "addr=10.9.0.1" in first["runs"]  # {host} is the host's inventory address


def test_a_secret_cannot_hide_a_command_from_its_approver(
    client: TestClient, users: Tokens
) -> None:
    hidden = workflow(
        "hidden",
        "  cmd: {type: string, required: true, secret: true}",
        '      - operation: shell\n        params: {command: "{{ params.cmd }}"}',
    )
    refused = register(client, users, hidden)
    assert refused.status_code == 422, refused.text
    assert "secret param 'cmd' would go into shell's 'command'" in refused.json()["detail"]
    assert refusals(client, users) == {("developer", "/api/v1/workflows", "invalid"): 1}

    # A secret that travels on stdin to an operation that declares it: allowed, and the
    # approver sees the command and a masked stdin.
    open_ = workflow(
        "open",
        "  token: {type: string, required: true, secret: true}\n"
        "  service: {type: string, required: true}",
        '      - operation: with_secret\n        params: {token: "{{ params.token }}"}\n'
        '      - operation: service_restart\n        params: {service: "{{ params.service }}"}',
    )
    assert register(client, users, open_).status_code == 201
    change = submit(client, users, "open", token=SECRET, service="nginx")
    assert change.status_code == 201, change.text
    assert change.json()["state"] == "pending_approval"
    steps = client.get(
        f"/api/v1/changes/{change.json()['id']}/preview", headers=users.headers("operator")
    )
    assert steps.status_code == 200
    assert SECRET not in steps.text
    token, restart = steps.json()
    assert (token["operation"], token["runs"], token["stdin"]) == (
        "with_secret",
        'read -r token; test -n "$token"',
        "***",
    )
    assert restart["operation"] == "service_restart"
    assert "nginx" in restart["runs"]
    page = client.get(f"/changes/{change.json()['id']}", headers=users.headers("operator"))
    assert page.status_code == 200
    assert "read -r token" in page.text
    assert SECRET not in page.text


def test_the_approver_sees_which_user_a_command_runs_as(client: TestClient, users: Tokens) -> None:
    """A host whose inventory says `become` runs its steps through sudo: the preview says so."""
    labels = {"ansible_become": "true", "ansible_become_user": "hdfs", "executor": "simulated"}
    patched = client.patch(
        "/api/v1/hosts/h001", json={"labels": labels}, headers=users.headers("operator")
    )
    assert patched.status_code == 200, patched.text
    source = workflow(
        "restart", "  {}", "      - operation: service_restart\n        params: {service: nginx}"
    )
    assert register(client, users, source).status_code == 201
    for selector, as_user in (("h001", "hdfs"), ("h002", "")):
        body = {"workflow": "restart", "title": "t", "selector": selector, "params": {}}
        change = client.post("/api/v1/changes", json=body, headers=users.headers("developer"))
        assert change.status_code == 201, change.text
        [step] = client.get(
            f"/api/v1/changes/{change.json()['id']}/preview", headers=users.headers("operator")
        ).json()
        assert step["as_user"] == as_user
        page = client.get(f"/changes/{change.json()['id']}", headers=users.headers("operator"))
        assert ("as <b>hdfs</b>, through sudo" in page.text) == bool(as_user)


def test_a_playbook_step_cannot_reach_off_its_directory_or_move_its_connection(
    client: TestClient, users: Tokens
) -> None:
    """Refused at submission (422, audited) as the server would refuse it on every host."""
    playbook = workflow(
        "play",
        "  book: {type: string, required: true}\n  vars: {type: object, default: {}}",
        "      - operation: ansible_playbook\n"
        '        params: {playbook: "{{ params.book }}", extra_vars: "{{ params.vars }}"}',
    )
    assert register(client, users, playbook).status_code == 201
    attacks = [
        ({"book": "roles/../../../root/steal.yml"}, "must be a path inside"),
        ({"book": "site.yml", "vars": {"ansible_connection": "local"}}, "may not set"),
        ({"book": "site.yml", "vars": {"ansible_ssh_common_args": "-o ProxyCommand=id"}}, "may"),
    ]
    for params, why in attacks:
        answer = submit(client, users, "play", **params)
        assert answer.status_code == 422, answer.text
        assert why in answer.json()["detail"]
    assert refusals(client, users) == {("developer", "/api/v1/changes", "invalid"): 3}
    fine = submit(client, users, "play", book="site.yml", vars={"ansible_become": True})
    assert fine.status_code == 201, fine.text
    assert fine.json()["state"] == "pending_approval"  # medium risk: an operator reviews it


def test_an_operation_may_not_put_a_secret_into_command_text(ops_dir: Path) -> None:
    from fleetops.changes.operations import SpecError, load_library

    (ops_dir / "leaky.yaml").write_text(
        SECRET_OP.replace("name: with_secret", "name: leaky")
        .replace("run: 'read -r token; test -n \"$token\"'", 'run: "test -n {{ token }}"')
        .replace('stdin: "{{ token }}"', "")
    )
    with pytest.raises(SpecError, match="secret param 'token' in command text"):
        load_library(ops_dir)


TOUCH = """name: touch
version: 1
description: leave a mark
params:
  dir: {type: string, required: true}
stages:
  - name: main
    steps:
      - operation: shell
        params: {command: "touch {{ params.dir }}/{{ host.hostname }}"}
    strategy: {batch: 100%}
"""


def test_a_host_label_does_not_move_its_steps_onto_the_server(db_url: str, tmp_path: Path) -> None:
    """A host labelled `executor: local` runs on the server only if an admin allowed that host."""
    settings = make_settings(
        db_url,
        tmp_path / "data",
        executor="ssh",
        local_executor_hosts=["h001"],
        engine_tick_seconds=0.05,
        budget_rack=1.0,
        budget_cluster=1.0,
    )
    executors = {"local": LocalExecutor(), "ssh": SimulatedExecutor()}
    marks = tmp_path / "marks"
    marks.mkdir()
    with TestClient(create_app(settings, executors=executors)) as client:
        load_fleet(db_url, fleet_doc(2, 1, executor="local"))
        users = seed_users(db_url)
        assert register(client, users, TOUCH).status_code == 201
        body = {"workflow": "touch", "title": "t", "selector": "h00[1-2]"}
        answer = client.post(
            "/api/v1/changes",
            json={**body, "params": {"dir": str(marks)}},
            headers=users.headers("developer"),
        )
        assert answer.status_code == 201, answer.text
        approve(client.post, users, answer.json())
        done = wait_for(
            lambda: (
                (d := client.get(
                    f"/api/v1/changes/{answer.json()['id']}", headers=users.headers("viewer")
                ).json())["state"] in ("failed", "paused", "succeeded") and d
            ),
            what="the change to end",
        )  # fmt: skip
        audit = client.get(
            "/api/v1/audit", params={"action": "change.step"}, headers=users.headers("admin")
        ).json()["items"]
    hosts = {h["hostname"]: (h["state"], h["error"]) for h in done["hosts"]}
    assert hosts["h001"] == ("succeeded", "")
    assert hosts["h002"][0] == "failed"
    assert "would run its steps on the fleetops server" in hosts["h002"][1]
    assert sorted(p.name for p in marks.iterdir()) == ["h001"]
    [refusal] = audit  # the attempt is in the audit log, not only in the change's record
    assert (refusal["outcome"], refusal["entity_id"]) == ("refused", str(done["id"]))
    assert refusal["after"]["host"] == "h002"
    assert "local_executor_hosts" in refusal["after"]["why"]
