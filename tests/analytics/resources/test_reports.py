"""Kept recommendations: a trace's report computed (every group, totals and series worked out by
hand), saved by a developer, read by anyone, decided by operators; every decision audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fleetops.analytics.resources.advice import compute
from fleetops.analytics.resources.scheduler import group_fields, target_of
from tests.analytics.resources.test_traces import write_trace
from tests.fixtures.app import Tokens

LETTERS = "ABCDEFGHIJKL"  # twelve task types: more groups than the evaluation's top ten


def small_trace(directory: Path) -> Path:
    """Twelve groups (task type X, 0.5 core, 0.5 memory units), each two instances of 30 s from
    t=0, using 0.1 and 0.2 core and memory units."""
    tasks = "".join(f"0,j_1,{x}1,30,50,0.5,2\n" for x in LETTERS)
    instances = "".join(
        f"0,j_1,{x}1,i{x}1,30,10,0.1\n0,j_1,{x}1,i{x}2,30,20,0.2\n" for x in LETTERS
    )
    return write_trace(directory, tasks, instances)


def report_body(tmp_path: Path) -> dict[str, Any]:
    return compute(small_trace(tmp_path / "trace"), method="krr", buckets=4).model_dump(mode="json")


def test_every_group_is_recommended_with_totals_and_series(tmp_path: Path) -> None:
    report = compute(small_trace(tmp_path / "trace"), method="krr", buckets=4)
    assert (report.source, report.key, report.method) == ("trace", "task", "krr")
    assert len(report.recommendations) == 2 * len(LETTERS)  # all groups, not the top ten
    by = {(a.group, a.resource): a for a in report.recommendations}
    # KRR: CPU p95 of the per-minute samples (0.1, 0.2) = 0.2 core; memory max 0.2 x 1.15
    cpu, mem = by[("A|0.5|0.5", "cpu")], by[("A|0.5|0.5", "mem")]
    assert (cpu.request, cpu.recommendation) == (0.5, 0.2)
    assert cpu.saving == pytest.approx((0.5 - 0.2) * 60)  # two instances of 30 s
    assert (mem.request, mem.recommendation) == (0.5, pytest.approx(0.23))
    totals = report.figures.totals
    # requested 0.5 x 60 s per group; used (0.1 + 0.2) x 30 s; recommended 0.2 x 60 s
    assert totals["cpu"].requested == pytest.approx(12 * 30.0)
    assert totals["cpu"].used == pytest.approx(12 * 9.0)
    assert totals["cpu"].recommended == pytest.approx(12 * 12.0)
    assert totals["mem"].recommended == pytest.approx(12 * 0.23 * 60, rel=1e-3)
    # wasted, instance by instance: (0.5 - 0.1) x 30 + (0.5 - 0.2) x 30 = 21 per group
    assert totals["cpu"].wasted == pytest.approx(12 * 21.0)
    assert totals["mem"].wasted == pytest.approx(12 * 21.0)
    wasters = report.figures.wasters
    assert [w.resource for w in wasters] == ["cpu"] * 10 + ["mem"] * 10  # the top ten of each
    assert wasters[0].wasted == pytest.approx(21.0)
    assert wasters[0].requested == pytest.approx(30.0)
    series = report.figures.series["A|0.5|0.5"]
    assert report.figures.bucket_s == 7.5  # 30 s in 4 buckets
    assert series.instances == [2.0] * 4  # both instances run through every bucket
    assert series.cpu_requested == [1.0] * 4
    assert series.cpu_used == [pytest.approx(0.3)] * 4
    assert len(report.figures.series) == len(LETTERS)


def test_a_group_is_named_as_the_scheduler_calls_it() -> None:
    assert group_fields("task", "M|50.0|0.59") == {
        "task_type": "M",
        "plan_cpu": "50.0",
        "plan_mem": "0.59",
        "job": "",
        "task_name": "",
    }
    assert target_of("root.batch.{task_type}", "yarn", "task", "M|50.0|0.59") == "root.batch.M"
    assert (
        target_of("batch/deployment/spark-{task_type}/main", "kubernetes", "task", "M|50|1")
        == "batch/deployment/spark-m/main"
    )
    # a field the grouping lacks, or a name the scheduler would not take, gives no target
    assert target_of("root.batch.{job}", "yarn", "task", "M|50.0|0.59") == ""
    assert target_of("root.{nope}", "yarn", "task", "M|50.0|0.59") == ""
    assert target_of("root batch;{task_type}", "yarn", "task", "M|1|1") == ""


def save(client: TestClient, tokens: Tokens, body: dict[str, Any], role: str = "developer") -> Any:
    return client.post("/api/v1/resources/reports", json=body, headers=tokens.headers(role))


def test_a_developer_saves_a_report_that_anyone_reads(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    body = report_body(tmp_path)
    assert save(client, tokens, body, role="viewer").status_code == 403
    saved = save(client, tokens, body)
    assert saved.status_code == 201, saved.text
    summary = saved.json()
    assert (summary["source"], summary["method"], summary["created_by"]) == (
        "trace",
        "krr",
        "developer",
    )
    assert summary["counts"] == {"proposed": 24, "accepted": 0, "rejected": 0, "applied": 0}
    listed = client.get("/api/v1/resources/reports", headers=tokens.headers("viewer")).json()
    assert [r["id"] for r in listed["items"]] == [summary["id"]]
    kept = client.get(
        f"/api/v1/resources/reports/{summary['id']}", headers=tokens.headers("viewer")
    ).json()
    first = kept["recommendations"][0]
    assert first["target"] == f"root.batch.{first['group'][0]}"  # the default template
    assert first["unit"] == ("cores" if first["resource"] == "cpu" else "normalised")
    assert {r["status"] for r in kept["recommendations"]} == {"proposed"}
    missing = client.get("/api/v1/resources/reports/999", headers=tokens.headers("viewer"))
    assert missing.status_code == 404


def test_a_bad_report_is_refused_whole(client: TestClient, tokens: Tokens, tmp_path: Path) -> None:
    body = report_body(tmp_path)
    body["recommendations"][0]["risk"] = 1.5
    assert save(client, tokens, body).status_code == 422
    body = report_body(tmp_path)
    body["figures"]["series"]["A|0.5|0.5"]["instances"] = [1.0] * 49  # beyond the bound
    assert save(client, tokens, body).status_code == 422
    listed = client.get("/api/v1/resources/reports", headers=tokens.headers("viewer")).json()
    assert listed["total"] == 0


def decide(client: TestClient, tokens: Tokens, rec_id: int, what: str, role: str) -> Any:
    return client.post(
        f"/api/v1/resources/recommendations/{rec_id}/{what}",
        json={"reason": "checked the group's peaks"},
        headers=tokens.headers(role),
    )


def test_operators_decide_and_every_decision_is_audited(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    report_id = save(client, tokens, report_body(tmp_path)).json()["id"]
    kept = client.get(f"/api/v1/resources/reports/{report_id}", headers=tokens.headers("viewer"))
    rec = kept.json()["recommendations"][0]["id"]
    assert decide(client, tokens, rec, "accept", "viewer").status_code == 403
    assert decide(client, tokens, rec, "accept", "developer").status_code == 403
    accepted = decide(client, tokens, rec, "accept", "operator")
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["status"], accepted.json()["decided_by"]) == ("accepted", "operator")
    again = decide(client, tokens, rec, "accept", "admin")
    assert again.status_code == 409
    assert "accepted already" in again.json()["detail"]
    rejected = decide(client, tokens, rec, "reject", "admin")  # reconsidered: not applied
    assert rejected.json()["status"] == "rejected"
    assert decide(client, tokens, 99999, "accept", "operator").status_code == 404
    records = client.get(
        "/api/v1/audit",
        params={"entity_type": "resource_recommendation"},
        headers=tokens.headers("admin"),
    ).json()["items"]
    assert sorted((r["action"], r["actor"]) for r in records) == [
        ("resources.accept", "operator"),
        ("resources.reject", "admin"),
    ]
    reject = next(r for r in records if r["action"] == "resources.reject")
    assert reject["before"]["status"] == "accepted"
    assert reject["after"] == {"status": "rejected", "reason": "checked the group's peaks"}
