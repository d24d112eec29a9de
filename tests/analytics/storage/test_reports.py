"""Storage reports on the server: saved by a developer, read by anyone logged in, shown on
/analytics/storage with their findings; every save audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fleetops.analytics.storage.analyses import analyze
from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.schemas import Options
from tests.analytics.storage.test_analyses import GB, MB, NAMESPACE, NOW
from tests.dashboard.test_pages import log_in
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
