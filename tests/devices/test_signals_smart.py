"""SMART adapter on `smartctl -j -a` documents: the real one this machine gives (a virtual disk
without SMART), and ATA and NVMe documents in smartctl 7.3's JSON layout."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleetops.devices.signals.exceptions import SignalError
from fleetops.devices.signals.smart import parse_smart
from fleetops.findings.enums import Severity

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
READ_AT = datetime(2026, 4, 1, 10, 15, tzinfo=UTC)  # the documents' local_time


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text())
    return doc


def test_healthy_disk_has_no_signal() -> None:
    assert parse_smart(load("smartctl_ata_healthy.json"), host="h001", now=NOW) == []


def test_failing_ata_disk_one_signal_per_signature() -> None:
    signals = parse_smart((DATA / "smartctl_ata_failing.json").read_text(), host="h001", now=NOW)
    by = {s.signature: s for s in signals}
    assert {k: v.severity for k, v in by.items()} == {
        "smart_failing": Severity.CRITICAL,
        "smart_media_errors": Severity.CRITICAL,
        "smart_degraded": Severity.WARNING,
    }
    failing = by["smart_failing"]
    assert failing.title == (
        "h001: SMART says the drive is failing on /dev/sdb "
        "(overall health self-assessment FAILED, Reallocated_Sector_Ct=61240)"
    )
    assert (failing.component, failing.observed_at, failing.source) == (
        "ZA1FAILING",
        READ_AT,
        "smart",
    )
    assert {k: failing.details[k] for k in ("device", "model", "serial", "protocol")} == {
        "device": "/dev/sdb",
        "model": "ST8000NM000A-2KE101",
        "serial": "ZA1FAILING",
        "protocol": "ATA",
    }
    media = by["smart_media_errors"].details["problems"]
    assert [(p["id"], p["raw"]) for p in media] == [(187, 412), (197, 248), (198, 248)]
    degraded = by["smart_degraded"].details["problems"]
    assert [(p["id"], p["raw_string"]) for p in degraded] == [(5, "61240"), (188, "1 1 1")]


def test_nvme_media_errors_and_critical_warning_bits() -> None:
    [media] = parse_smart(load("smartctl_nvme_media_errors.json"), host="h001", now=NOW)
    assert (media.signature, media.severity, media.component) == (
        "smart_media_errors",
        Severity.CRITICAL,
        "S6CKNA0W812345",
    )
    assert media.details["model"] == "SAMSUNG MZQL27T6HBLA-00A07"
    worn = {
        s.signature: s
        for s in parse_smart(load("smartctl_nvme_worn_out.json"), host="h001", now=NOW)
    }
    assert set(worn) == {"smart_failing", "smart_degraded"}
    assert [p.get("bit") for p in worn["smart_failing"].details["problems"]] == [None, 2, 3]
    assert [
        (p["name"], p.get("bit"), p.get("raw")) for p in worn["smart_degraded"].details["problems"]
    ] == [
        ("critical_warning", 0, None),
        ("percentage_used", None, 112),
    ]


def test_a_list_of_documents_covers_every_disk() -> None:
    docs = [load("smartctl_ata_healthy.json"), load("smartctl_nvme_media_errors.json")]
    assert [s.details["device"] for s in parse_smart(docs, host="h001", now=NOW)] == ["/dev/nvme0"]


def test_without_local_time_the_reading_is_now() -> None:
    doc = load("smartctl_nvme_media_errors.json")
    del doc["local_time"]
    assert parse_smart(doc, host="h001", now=NOW)[0].observed_at == NOW


def test_this_machines_disk_gives_a_clear_error() -> None:
    """The real smartctl output here: a virtio disk has no SMART; stored, and rerun if present."""
    stored = (DATA / "smartctl_vda_no_smart.json").read_text()
    with pytest.raises(SignalError) as caught:
        parse_smart(stored, host="h001", now=NOW)
    assert caught.value.detail == (
        "smartctl could not read /dev/vda: /dev/vda: Unable to detect device type (exit status 1)"
    )
    smartctl = shutil.which("smartctl")
    if smartctl is None or not Path("/dev/vda").exists():
        pytest.skip("smartctl or /dev/vda absent (apt-get install smartmontools)")
    live = subprocess.run([smartctl, "-j", "-a", "/dev/vda"], capture_output=True, text=True)
    with pytest.raises(SignalError, match=r"^smartctl could not read /dev/vda: "):
        parse_smart(live.stdout, host="h001", now=NOW)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            "not json",
            "smartctl output is not JSON (line 1, column 1: Expecting value); run "
            "`smartctl -j -a /dev/X`",
        ),
        (
            {"model_name": "x"},
            "not `smartctl -j` output: expected a JSON object with a `smartctl` section",
        ),
        ([], "no smartctl document given"),
        (
            [{"smartctl": {}, "smart_status": {"passed": True}}, 3],
            "document 2: not `smartctl -j` output: expected a JSON object with a `smartctl` "
            "section",
        ),
        (
            {"smartctl": {"exit_status": 4}, "device": {"name": "/dev/sdc"}},
            "smartctl could not read /dev/sdc: no SMART data in its output (exit status 4)",
        ),
        (
            {"smartctl": {}, "device": {"name": "/dev/sdc"}, "ata_smart_attributes": []},
            "/dev/sdc: `ata_smart_attributes` must be an object, got list",
        ),
        (
            {
                "smartctl": {},
                "device": {"name": "/dev/sdc"},
                "ata_smart_attributes": {"table": [{"name": "Raw_Read_Error_Rate"}]},
            },
            "/dev/sdc: ata_smart_attributes.table[0] has no numeric id",
        ),
        (
            {"smartctl": {}, "smart_status": {"passed": True}, "local_time": {"time_t": 10**20}},
            "local_time.time_t 100000000000000000000 is not a time",
        ),
    ],
)
def test_malformed_documents_are_refused_precisely(payload: Any, message: str) -> None:
    with pytest.raises(SignalError) as caught:
        parse_smart(payload, host="h001", now=NOW)
    assert caught.value.detail == message
