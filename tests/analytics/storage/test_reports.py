"""Storage reports on the server: saved by a developer, read by anyone logged in, shown on
/analytics/storage with their findings; every save audited."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fleetops.analytics.storage.analyses import analyze
from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.schemas import Options
from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.inventory.document import HostDoc, InventoryDoc
from tests.analytics.storage.test_analyses import GB, MB, NAMESPACE, NOW
from tests.dashboard.test_pages import csrf_of, log_in
from tests.fixtures.app import Tokens


def report(tmp_path: Path) -> dict[str, Any]:
    parquet = tmp_path / "ns.parquet"
    with EntryWriter(parquet) as writer:
        writer.extend(NAMESPACE)
    found = analyze(parquet, Options(now=NOW), name="fsimage_0000000000000042")
    return found.model_dump(mode="json")


def test_a_developer_saves_a_report_that_anyone_reads(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    body = report(tmp_path)
    saved = client.post("/api/v1/storage/reports", json=body, headers=tokens.headers("developer"))
    assert saved.status_code == 201, saved.text
    summary = saved.json()
    assert summary["source"] == "fsimage_0000000000000042"
    assert summary["files"] == 13
    # trash over retention + cold data + over-replication + layered trash (disk findings)
    assert summary["disk_savings"] == (300 * MB + 10 * MB + 3 * GB) + 3 * GB + 21 * MB + 31 * MB
    listed = client.get("/api/v1/storage/reports", headers=tokens.headers("viewer")).json()
    assert [r["id"] for r in listed["items"]] == [summary["id"]]
    whole = client.get(f"/api/v1/storage/reports/{summary['id']}", headers=tokens.headers("viewer"))
    assert whole.json()["report"] == body
    audit = client.get(
        "/api/v1/audit", params={"entity_type": "storage_report"}, headers=tokens.headers("admin")
    ).json()
    assert [(a["action"], a["actor"]) for a in audit["items"]] == [("storage.report", "developer")]


def test_who_may_save_and_what_is_refused(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    body = report(tmp_path)
    url = "/api/v1/storage/reports"
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json=body, headers=tokens.headers("viewer")).status_code == 403
    broken = {**body, "totals": {**body["totals"], "files": "many"}}
    refused = client.post(url, json=broken, headers=tokens.headers("developer"))
    assert refused.status_code == 422
    assert "totals.files" in refused.json()["detail"]
    missing = client.get(f"{url}/999", headers=tokens.headers("viewer"))
    assert missing.status_code == 404
    assert client.get(url, headers=tokens.headers("viewer")).json()["total"] == 0  # none kept


def test_the_pages_show_the_reports_and_a_report_s_findings(
    client: TestClient, tokens: Tokens, tmp_path: Path
) -> None:
    empty = log_in(client, next="/analytics/storage")
    assert empty.status_code == 303
    page = client.get("/analytics/storage")
    assert "fleetops storage analyze FSIMAGE --save" in page.text  # what to do with none yet
    body = report(tmp_path)
    saved = client.post("/api/v1/storage/reports", json=body, headers=tokens.headers("developer"))
    report_id = saved.json()["id"]
    listing = client.get("/analytics/storage")
    assert f'href="/analytics/storage/{report_id}"' in listing.text
    assert "6.4 GiB" in listing.text  # what it would save: 6,822,035,456 bytes
    detail = client.get(f"/analytics/storage/{report_id}")
    assert detail.status_code == 200
    for title in ("Trash checkpoints older than 24 h", "Trash inside the trash", "small files"):
        assert title in detail.text
    assert 'id="owners"' in detail.text
    assert "/data/logs" in detail.text  # the small files' directory
    assert client.get("/analytics/storage/999").status_code == 404


def namenode(db_url: str) -> None:
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        host = HostDoc(hostname="nn-01", labels={"role": "namenode"})
        apply_document(session, AuditContext(actor="test"), InventoryDoc(hosts=[host]))
    engine.dispose()


def test_a_report_proposes_the_trash_expunge_as_a_change_awaiting_approval(
    client: TestClient, tokens: Tokens, tmp_path: Path, db_url: str
) -> None:
    body = report(tmp_path)
    saved = client.post("/api/v1/storage/reports", json=body, headers=tokens.headers("developer"))
    url = f"/api/v1/storage/reports/{saved.json()['id']}/expunge"
    nowhere = client.post(url, headers=tokens.headers("developer"))
    assert nowhere.status_code == 409  # no host answers to label:role=namenode yet
    namenode(db_url)
    assert client.post(url, headers=tokens.headers("viewer")).status_code == 403
    proposed = client.post(url, headers=tokens.headers("developer"))
    assert proposed.status_code == 201, proposed.text
    change = proposed.json()
    assert (change["workflow"], change["state"], change["risk"]) == (
        "expunge-trash",
        "pending_approval",
        "high",
    )
    assert change["params"] == {"older_than_hours": 24}
    assert change["host_count"] == 1
    assert "checkpoints older than 24 h" in change["reason"]
    preview = client.get(
        f"/api/v1/changes/{change['id']}/preview", headers=tokens.headers("viewer")
    )
    [step] = preview.json()
    assert 'cutoff=$(date -u -d "-24 hours" +%y%m%d%H%M%S)' in step["runs"]
    assert "hdfs dfs -rm -r -skipTrash" in step["runs"]


def test_a_report_without_old_checkpoints_proposes_nothing(
    client: TestClient, tokens: Tokens, tmp_path: Path, db_url: str
) -> None:
    namenode(db_url)
    parquet = tmp_path / "ns.parquet"
    with EntryWriter(parquet) as writer:
        writer.extend(NAMESPACE)
    kept = analyze(parquet, Options(now=NOW, trash_retention_hours=1000), name="kept long")
    body = kept.model_dump(mode="json")
    saved = client.post("/api/v1/storage/reports", json=body, headers=tokens.headers("developer"))
    refused = client.post(
        f"/api/v1/storage/reports/{saved.json()['id']}/expunge", headers=tokens.headers("admin")
    )
    assert refused.status_code == 409
    assert "no trash checkpoint older than its retention" in refused.json()["detail"]


def test_the_report_page_proposes_the_expunge(
    client: TestClient, tokens: Tokens, tmp_path: Path, db_url: str
) -> None:
    namenode(db_url)
    saved = client.post(
        "/api/v1/storage/reports", json=report(tmp_path), headers=tokens.headers("developer")
    )
    report_id = saved.json()["id"]
    log_in(client, username="developer", next=f"/analytics/storage/{report_id}")
    page = client.get(f"/analytics/storage/{report_id}")
    assert "Propose the expunge" in page.text
    form = {"csrf": csrf_of(page)}
    posted = client.post(
        f"/analytics/storage/{report_id}/expunge", data=form, follow_redirects=False
    )
    assert posted.status_code == 303
    assert re.fullmatch(r"/changes/\d+", posted.headers["location"])
    change = client.get(posted.headers["location"])
    assert "Expunge HDFS trash checkpoints older than 24 h" in change.text
