"""Signals become host findings the health policy reads: the service on both databases, and
`POST /api/v1/devices/{host}/signals` on the real app."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.config import Settings
from fleetops.devices.enums import Source
from fleetops.devices.exceptions import DeviceNotFound
from fleetops.devices.policy.rules import load_policy
from fleetops.devices.policy.service import Limits, evaluate
from fleetops.devices.signals.ingest import parse_payload
from fleetops.devices.signals.ipmi import parse_sel
from fleetops.devices.signals.service import KIND, Signal, report_signals
from fleetops.devices.signals.smart import parse_smart
from fleetops.findings.enums import Severity
from fleetops.main import create_app
from fleetops.models import Finding
from tests.devices.factory import add_hosts, seed
from tests.fixtures.app import Tokens

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def failing_disk() -> list[Signal]:
    return parse_smart((DATA / "smartctl_ata_failing.json").read_text(), host="h001", now=NOW)


def count_findings(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Finding)) or 0


# --- service ----------------------------------------------------------------------------------


def test_signals_open_then_bump_one_finding_per_disk_and_signature(session: Session) -> None:
    add_hosts(session, "h001")
    opened = report_signals(session, failing_disk(), now=NOW)
    assert [(f.kind, f.detector, f.details["signature"], f.severity) for f in opened] == [
        (KIND, "smart", "smart_failing", "critical"),
        (KIND, "smart", "smart_degraded", "warning"),
        (KIND, "smart", "smart_media_errors", "critical"),
    ]
    first = opened[0]
    assert first.dedup_key == "hardware_error:smart_failing:host:h001:smart:ZA1FAILING"
    assert (first.entity_type, first.entity, first.onset_at) == (
        "host",
        "h001",
        datetime(2026, 4, 1, 10, 15, tzinfo=UTC),
    )
    assert first.details["serial"] == "ZA1FAILING"
    assert first.details["component"] == "ZA1FAILING"
    assert first.evidence == [
        {
            "type": "signal",
            "source": "smart",
            "observed_at": "2026-04-01T10:15:00+00:00",
            "component": "ZA1FAILING",
        }
    ]
    session.commit()
    later = NOW + timedelta(minutes=10)
    again = report_signals(session, failing_disk(), now=later)
    assert [f.id for f in again] == [f.id for f in opened]
    assert [(f.occurrences, f.last_seen) for f in again] == [(2, later)] * 3
    assert count_findings(session) == 3


def test_same_signature_on_two_parts_keeps_two_findings(session: Session) -> None:
    add_hosts(session, "h001")
    sel = (
        "   1 | 04/01/26 | 10:00:01 UTC | Memory DIMM_A1 | Correctable ECC | Asserted\n"
        "   2 | 04/01/26 | 10:00:02 UTC | Memory DIMM_B1 | Correctable ECC | Asserted\n"
        "   3 | 04/01/26 | 10:00:03 UTC | Memory DIMM_A1 | Correctable ECC | Asserted\n"
    )
    found = report_signals(session, parse_sel(sel, host="h001", now=NOW), now=NOW)
    assert [(f.details["component"], f.occurrences, f.detector) for f in found] == [
        ("Memory DIMM_A1", 2, "ipmi-sel"),
        ("Memory DIMM_B1", 1, "ipmi-sel"),
    ]


def test_unknown_host_is_refused_and_nothing_stored(session: Session) -> None:
    add_hosts(session, "h001")
    signals = [
        *failing_disk(),
        *parse_smart((DATA / "smartctl_nvme_media_errors.json").read_text(), host="ghost", now=NOW),
    ]
    with pytest.raises(DeviceNotFound) as caught:
        report_signals(session, signals, now=NOW)
    assert caught.value.detail == "host 'ghost' not found"
    assert count_findings(session) == 0


def acted(decisions: Any) -> dict[str, set[int]]:
    """Hosts the policy moves now (suspects, or isolates), with the findings behind each."""
    moving = [*decisions.suspect, *getattr(decisions, "isolate", [])]
    return {d.hostname: set(d.findings) for d in moving}


def test_the_health_policy_acts_on_sel_findings(session: Session) -> None:
    """A BMC's uncorrectable memory error, drive fault and machine check meet built-in rules."""
    add_hosts(session, "h001", "h002", "h003")
    sel = parse_sel((DATA / "ipmitool_sel_elist.txt").read_text(), host="h002", now=NOW)
    found = report_signals(session, sel, now=NOW)
    session.commit()
    by_signature = {f.details["signature"]: f.id for f in found}
    assert set(by_signature) == {"edac_ce", "edac_ue", "disk_io", "mce", "psu", "fan"}
    decisions = evaluate(session, load_policy(), now=NOW, limits=Limits())
    assert set(acted(decisions)) == {"h002"}
    behind = acted(decisions)["h002"]
    assert {by_signature[s] for s in ("edac_ue", "disk_io", "mce")} <= behind


def test_smart_findings_wait_for_their_rules(session: Session) -> None:
    """smart_* signatures are new: their findings are there, right kind, signature, severity."""
    add_hosts(session, "h001")
    report_signals(session, failing_disk(), now=NOW)
    session.commit()
    evaluate(session, load_policy(), now=NOW, limits=Limits())  # reads them without failing
    rows = session.scalars(select(Finding).where(Finding.entity == "h001").order_by(Finding.id))
    assert [(f.kind, f.details["signature"], f.severity, f.status) for f in rows] == [
        (KIND, "smart_failing", "critical", "open"),
        (KIND, "smart_degraded", "warning", "open"),
        (KIND, "smart_media_errors", "critical", "open"),
    ]


def test_edac_counters_reach_the_corrected_memory_rule(session: Session) -> None:
    """edac_ce wants 3 reports in a day: three readings, each with new errors, get there."""
    add_hosts(session, "h001", "h002", "h003")
    reading = {"controllers": {"mc0": {"ce_count": 0, "ue_count": 0}}}
    policy = load_policy()
    for i in range(1, 4):
        previous, reading = reading, {"controllers": {"mc0": {"ce_count": i * 5, "ue_count": 0}}}
        at = NOW + timedelta(hours=i)
        signals = parse_payload(Source.EDAC, reading, host="h001", now=at, previous=previous)
        [finding] = report_signals(session, signals, now=at)
        session.commit()
        moving = acted(evaluate(session, policy, now=at, limits=Limits()))
        assert moving == ({"h001": {finding.id}} if i == 3 else {})
    assert (finding.occurrences, finding.score, finding.details["total"]) == (3, 5.0, 15)


def test_long_components_keep_the_key_within_bounds(session: Session) -> None:
    add_hosts(session, "h001")
    signal = Signal(
        host="h001",
        source="ipmi_sel",
        signature="fan",
        severity=Severity.WARNING,
        title="h001: fan",
        details={},
        observed_at=NOW,
        component="Fan " + "x" * 300,
    )
    [finding] = report_signals(session, [signal], now=NOW)
    assert len(finding.dedup_key) <= 255
    assert finding.dedup_key.startswith("hardware_error:fan:host:h001:ipmi_sel:")


# --- API --------------------------------------------------------------------------------------


def post(
    client: TestClient,
    tokens: Tokens | None,
    host: str,
    body: dict[str, Any],
    role: str = "operator",
):  # type: ignore[no-untyped-def]
    headers = tokens.headers(role) if tokens else {}
    return client.post(f"/api/v1/devices/{host}/signals", json=body, headers=headers)


def smart_body(name: str = "smartctl_ata_failing.json") -> dict[str, Any]:
    return {"source": "smart", "payload": json.loads((DATA / name).read_text())}


def findings_total(client: TestClient, tokens: Tokens) -> int:
    page = client.get("/api/v1/findings", headers=tokens.headers("viewer")).json()
    return int(page["total"])


def test_post_opens_then_bumps(client: TestClient, tokens: Tokens, db_url: str) -> None:
    seed(db_url, "h001")
    first = post(client, tokens, "h001", smart_body())
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["source"], body["signals"], len(body["opened"])) == ("smart", 3, 3)
    assert [f["details"]["signature"] for f in body["findings"]] == [
        "smart_failing",
        "smart_degraded",
        "smart_media_errors",
    ]
    assert body["opened"] == [f["id"] for f in body["findings"]]
    again = post(client, tokens, "h001", smart_body())  # the same reading, as text this time
    assert again.status_code == 200
    assert (again.json()["opened"], [f["occurrences"] for f in again.json()["findings"]]) == (
        [],
        [2, 2, 2],
    )
    healthy = post(client, tokens, "h001", smart_body("smartctl_ata_healthy.json"))
    assert (healthy.status_code, healthy.json()["signals"], healthy.json()["findings"]) == (
        200,
        0,
        [],
    )
    audit = client.get(
        "/api/v1/audit", params={"action": "finding.create"}, headers=tokens.headers("admin")
    ).json()["items"]
    # The operator who posted the tool's output is on record, the detector in the finding.
    assert (
        sorted((a["actor"], a["after"]["detector"], a["after"]["kind"]) for a in audit)
        == [("operator", "smart", "hardware_error")] * 3
    )
    posts = client.get(
        "/api/v1/audit", params={"action": "device.signals"}, headers=tokens.headers("admin")
    ).json()["items"]
    assert [(a["actor"], a["entity_id"], len(a["after"]["opened"])) for a in posts] == [
        ("operator", "h001", 0),
        ("operator", "h001", 0),
        ("operator", "h001", 3),
    ]


def test_sel_text_with_previous_dump(client: TestClient, tokens: Tokens, db_url: str) -> None:
    seed(db_url, "h001")
    text = (DATA / "ipmitool_sel_elist.txt").read_text()
    first = post(client, tokens, "h001", {"source": "ipmi_sel", "payload": text})
    assert first.status_code == 201
    assert first.json()["signals"] == 9
    repeat = post(client, tokens, "h001", {"source": "ipmi_sel", "payload": text, "previous": text})
    assert (repeat.status_code, repeat.json()["signals"]) == (200, 0)


def test_who_may_send(client: TestClient, tokens: Tokens, db_url: str) -> None:
    seed(db_url, "h001")
    anonymous = post(client, None, "h001", smart_body())
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "NotAuthenticated")
    viewer = post(client, tokens, "h001", smart_body(), role="viewer")
    assert viewer.status_code == 403
    assert viewer.json()["detail"] == "this action needs the operator role; you act as viewer"
    assert findings_total(client, tokens) == 0


@pytest.mark.parametrize(
    ("body", "error", "detail"),
    [
        (
            {"source": "smart", "payload": "{oops"},
            "SignalError",
            "smartctl output is not JSON (line 1, column 2: Expecting property name enclosed in "
            "double quotes); run `smartctl -j -a /dev/X`",
        ),
        (
            {"source": "ipmi_sel", "payload": {"sel": []}},
            "ValidationError",
            "body.ipmi_sel.payload: Input should be a valid string",
        ),
        (
            {"source": "node_exporter", "payload": "<html>Node Exporter</html>\n"},
            "SignalError",
            "metrics line 1 is not in the Prometheus text format: '<html>Node Exporter</html>'",
        ),
        (
            {"source": "edac", "payload": {"controllers": {"mc0": {"ce_count": -2}}}},
            "SignalError",
            "EDAC reading: controllers.mc0.ce_count must be a whole number of at least 0, got -2",
        ),
    ],
)
def test_bad_payloads_are_422_and_store_nothing(
    client: TestClient, tokens: Tokens, db_url: str, body: dict[str, Any], error: str, detail: str
) -> None:
    seed(db_url, "h001")
    response = post(client, tokens, "h001", body)
    assert response.status_code == 422
    answer = response.json()
    assert (answer["error"], answer["detail"]) == (error, detail)
    assert findings_total(client, tokens) == 0


def test_unknown_source_and_host(client: TestClient, tokens: Tokens, db_url: str) -> None:
    seed(db_url, "h001")
    wrong = post(client, tokens, "h001", {"source": "syslog", "payload": "x"})
    assert wrong.status_code == 422
    assert "source" in json.dumps(wrong.json())
    ghost = post(client, tokens, "ghost", smart_body())
    assert (ghost.status_code, ghost.json()["detail"]) == (404, "host 'ghost' not found")
    assert findings_total(client, tokens) == 0
