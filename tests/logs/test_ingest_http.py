"""HTTP ingestion in the exact shapes shippers send, and every kind of bad input."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.changes.fleet import fleet_doc, load_fleet
from tests.fixtures.app import Tokens
from tests.logs.ingest_helpers import ingest_token, stored

pytestmark = pytest.mark.background  # the app ingests: its pipeline stores what is posted

NDJSON = {"Content-Type": "application/x-ndjson"}


def test_fluent_bit_json_array_with_date_and_log(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    # Fluent Bit `http` output, format json: an array; `date` is epoch seconds with fraction.
    at = round(datetime.now(UTC).timestamp(), 6)
    body = [
        {
            "date": at,
            "log": "Connection closed by 10.0.0.1 port 22\n",
            "host": "dn-0001",
            "unit": "ssh",
        },
        {
            "date": at + 1.5,
            "log": "Connection closed by 10.0.0.9 port 22",
            "host": "dn-0002",
            "unit": "ssh",
        },
    ]
    response = client.post("/api/v1/logs", json=body, headers=ingest_token(client, tokens))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "truncated": 0,
        "clock_skew": 0,
        "refused_hosts": 0,
    }
    lines = stored(db_url)
    assert [(r["host"], r["message"]) for r in lines] == [
        ("dn-0001", "Connection closed by 10.0.0.1 port 22"),
        ("dn-0002", "Connection closed by 10.0.0.9 port 22"),
    ]
    assert abs(lines[0]["ts"].timestamp() - at) < 1e-5
    assert lines[0]["labels"] == {"unit": "ssh"}
    assert lines[0]["source"] == "agent-1"
    assert lines[0]["template_id"] == lines[1]["template_id"]


def test_vector_ndjson_gzip_with_rfc3339(client: TestClient, tokens: Tokens, db_url: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        {
            "message": f"Took {i} ms to send block",
            "host": "wk-0003",
            "timestamp": (now - timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "source_type": "file",
            "file": "/var/log/app.log",
        }
        for i in range(50)
    ]
    body = gzip.compress("\n".join(json.dumps(r) for r in rows).encode())
    headers = {**ingest_token(client, tokens), **NDJSON, "Content-Encoding": "gzip"}
    response = client.post("/api/v1/logs", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 50
    lines = stored(db_url)
    assert len(lines) == 50
    assert lines[0]["ts"] == now
    assert lines[0]["labels"] == {"source_type": "file"}
    assert lines[0]["file"] == "/var/log/app.log"
    assert lines[0]["offset"] is None
    templates = client.get("/api/v1/logs/templates", headers=tokens.headers("viewer")).json()
    assert templates["items"][0]["text"] == "Took <*> ms to send block"
    assert templates["items"][0]["count"] == 50


def test_agent_resend_is_deduplicated_by_file_offset(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    headers = {**ingest_token(client, tokens), **NDJSON}
    batch = [
        {"message": f"line {i}", "host": "h1", "file": "/var/log/a.log#1", "offset": i * 7}
        for i in range(10)
    ]
    first = client.post(
        "/api/v1/logs", content="\n".join(map(json.dumps, batch[:6])), headers=headers
    )
    assert first.json()["accepted"] == 6
    again = client.post("/api/v1/logs", content="\n".join(map(json.dumps, batch)), headers=headers)
    assert again.json() == {
        "accepted": 4,
        "duplicates": 6,
        "truncated": 0,
        "clock_skew": 0,
        "refused_hosts": 0,
    }
    assert [r["message"] for r in stored(db_url)] == [f"line {i}" for i in range(10)]


def test_dedup_is_per_source(client: TestClient, tokens: Tokens, db_url: str) -> None:
    a, b = ingest_token(client, tokens, "a"), ingest_token(client, tokens, "b")
    record = {"message": "same", "host": "h", "file": "/f", "offset": 0}
    assert client.post("/api/v1/logs", json=[record], headers=a).json()["accepted"] == 1
    assert client.post("/api/v1/logs", json=[record], headers=b).json()["accepted"] == 1
    assert client.post("/api/v1/logs", json=[record], headers=a).json()["duplicates"] == 1


def test_loki_push_json(client: TestClient, tokens: Tokens, db_url: str) -> None:
    token = ingest_token(client, tokens, "promtail")["Authorization"].split()[1]
    basic = base64.b64encode(f"tenant:{token}".encode()).decode()
    ns = str(int(datetime.now(UTC).timestamp() * 1e9))
    body = {
        "streams": [
            {
                "stream": {"job": "varlogs", "host": "dn-0007"},
                "values": [
                    [ns, "kernel: EXT4-fs error (device sda1)"],
                    [ns, "second", {"trace_id": "abc"}],
                ],
            }
        ]
    }
    response = client.post(
        "/loki/api/v1/push", json=body, headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 204, response.text
    lines = stored(db_url)
    assert [(r["host"], r["source"], r["message"]) for r in lines] == [
        ("dn-0007", "promtail", "kernel: EXT4-fs error (device sda1)"),
        ("dn-0007", "promtail", "second"),
    ]
    assert lines[1]["labels"] == {"job": "varlogs", "host": "dn-0007", "trace_id": "abc"}


def test_loki_protobuf_is_refused_with_advice(client: TestClient, tokens: Tokens) -> None:
    headers = {**ingest_token(client, tokens), "Content-Type": "application/x-protobuf"}
    response = client.post("/loki/api/v1/push", content=b"\x00\x01", headers=headers)
    assert response.status_code == 415
    assert "JSON form" in response.json()["detail"]


def test_authentication(client: TestClient, tokens: Tokens) -> None:
    assert client.post("/api/v1/logs", json=[{"message": "x"}]).status_code == 401
    bad = {"Authorization": "Bearer fi_nope_nope"}
    assert client.post("/api/v1/logs", json=[{"message": "x"}], headers=bad).status_code == 401
    user = client.post("/api/v1/logs", json=[{"message": "x"}], headers=tokens.headers("admin"))
    assert user.status_code == 403
    assert "ingest token" in user.json()["detail"]
    headers = ingest_token(client, tokens, "gone")
    assert (
        client.delete("/api/v1/logs/tokens/gone", headers=tokens.headers("admin")).status_code
        == 200
    )
    assert client.post("/api/v1/logs", json=[{"message": "x"}], headers=headers).status_code == 401


def test_token_management_needs_admin_and_is_audited(client: TestClient, tokens: Tokens) -> None:
    denied = client.post(
        "/api/v1/logs/tokens", json={"name": "x"}, headers=tokens.headers("operator")
    )
    assert denied.status_code == 403
    ingest_token(client, tokens, "rack07")
    listed = client.get("/api/v1/logs/tokens", headers=tokens.headers("admin")).json()
    assert [t["name"] for t in listed] == ["rack07"]
    assert "token" not in listed[0]
    dup = client.post(
        "/api/v1/logs/tokens", json={"name": "rack07"}, headers=tokens.headers("admin")
    )
    assert dup.status_code == 409
    audit = client.get(
        "/api/v1/audit", params={"action": "ingest_token.*"}, headers=tokens.headers("admin")
    ).json()
    assert [r["action"] for r in audit["items"]] == ["ingest_token.create"]


def test_bad_input_is_refused_precisely_and_stores_nothing(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    headers = {**ingest_token(client, tokens), **NDJSON}
    cases = [
        (b'{"message": "ok"}\n{"message": "broken"\n', 400, "line 2"),
        (b'{"msg2": "no message"}', 400, "no message field"),
        (b"[1, 2]", 400, "expected a JSON object"),
        (b'{"message": "x", "file": "/f", "offset": -1}', 400, "offset must be"),
    ]
    for body, status, text in cases:
        response = client.post("/api/v1/logs", content=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert text in response.json()["detail"]
    bomb = gzip.compress(b" " * (40 * 1024 * 1024))
    response = client.post(
        "/api/v1/logs", content=bomb, headers={**headers, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    response = client.post(
        "/api/v1/logs", content=b"{}", headers={**headers, "Content-Encoding": "br"}
    )
    assert response.status_code == 415
    response = client.post(
        "/api/v1/logs", content=b"\x1f\x8b garbage", headers={**headers, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 400
    assert stored(db_url) == []


def test_oversize_invalid_utf8_and_skewed_lines_are_kept_and_flagged(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    headers = {**ingest_token(client, tokens), **NDJSON}
    long = "x" * (70 * 1024)
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = (
        json.dumps({"message": long}).encode()
        + b'\n{"message": "bad \xff byte"}\n'
        + json.dumps(
            {"message": "later", "timestamp": future, "level": "INFO", "extra": {"a": 1}}
        ).encode()
    )
    response = client.post("/api/v1/logs", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 3,
        "duplicates": 0,
        "truncated": 1,
        "clock_skew": 1,
        "refused_hosts": 0,
    }
    big, bad, later = stored(db_url)
    assert len(big["message"]) == 64 * 1024
    assert big["size"] == 70 * 1024
    assert big["flags"] & 1
    assert bad["message"] == "bad \ufffd byte"
    assert bad["flags"] & 2
    assert later["flags"] & 4
    assert later["labels"]["original_ts"].startswith(future[:19])
    assert later["labels"]["extra.a"] == "1"
    assert later["labels"]["level"] == "INFO"


def test_search_and_templates_api(client: TestClient, tokens: Tokens) -> None:
    headers = {**ingest_token(client, tokens), **NDJSON}
    body = "\n".join(
        json.dumps({"message": f"Finished task {i}.0 in {i * 10} ms", "host": f"h{i % 2}"})
        for i in range(6)
    )
    client.post("/api/v1/logs", content=body, headers=headers)
    viewer = tokens.headers("viewer")
    h1 = client.get("/api/v1/logs/search", params={"host": "h1"}, headers=viewer).json()
    assert [line["message"] for line in h1] == [
        "Finished task 5.0 in 50 ms",
        "Finished task 3.0 in 30 ms",
        "Finished task 1.0 in 10 ms",
    ]
    after = client.get(
        "/api/v1/logs/search", params={"after_id": h1[-1]["id"]}, headers=viewer
    ).json()
    assert [line["message"][:15] for line in after] == [
        "Finished task 2"[:15],
        "Finished task 3",
        "Finished task 4",
        "Finished task 5",
    ]
    tid = h1[0]["template_id"]
    template = client.get(f"/api/v1/logs/templates/{tid}", headers=viewer).json()
    assert template["count"] == 6
    assert template["example"] == "Finished task 0.0 in 0 ms"
    assert client.get("/api/v1/logs/templates/999999", headers=viewer).status_code == 404
    assert (
        client.get(
            "/api/v1/logs/search", params={"template": tid, "contains": "in 20"}, headers=viewer
        ).json()[0]["host"]
        == "h0"
    )


def test_a_bound_token_speaks_only_for_its_hosts(
    client: TestClient, tokens: Tokens, db_url: str
) -> None:
    """A forged line naming another host is refused, counted and audited; its own lines are
    stored. (Findings and isolations start from stored lines, so a shipper cannot drain a host
    it does not run on.)"""
    load_fleet(db_url, fleet_doc(3, 1, executor="simulated"))
    created = client.post(
        "/api/v1/logs/tokens",
        json={"name": "h001-agent", "hosts": "h001"},
        headers=tokens.headers("admin"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["hosts"] == "h001"
    agent = {"Authorization": f"Bearer {created.json()['token']}"}
    forged = "kernel: EXT4-fs error (device sdb1): ext4_find_entry: reading directory lblock 0"
    body = [
        {"log": "sshd: Accepted publickey for ops", "host": "h001"},
        {"log": forged, "host": "h002"},
        {"log": forged, "host": "h003"},
    ]
    answer = client.post("/api/v1/logs", json=body, headers=agent)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["refused_hosts"]) == (1, 2)
    assert [r["host"] for r in stored(db_url)] == ["h001"]
    audit = client.get(
        "/api/v1/audit", params={"outcome": "foreign_hosts"}, headers=tokens.headers("admin")
    ).json()["items"]
    assert [(a["actor"], a["after"]["lines"], a["after"]["hosts"]) for a in audit] == [
        ("ingest:h001-agent", 2, ["h002", "h003"])
    ]
    bad = client.post(
        "/api/v1/logs/tokens",
        json={"name": "broken", "hosts": "rack=("},
        headers=tokens.headers("admin"),
    )
    assert bad.status_code == 400, bad.text
