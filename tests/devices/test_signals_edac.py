"""EDAC adapter: counters read from a sysfs tree laid out as the kernel does (this machine has no
EDAC driver), and their increases between readings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fleetops.devices.signals.edac import EDAC_MC, parse_edac, read_edac
from fleetops.devices.signals.exceptions import SignalError, SourceUnavailable
from fleetops.findings.enums import Severity

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
LABEL = "CPU_SrcID#0_MC#0_Chan#0_DIMM#0"


def write_edac(
    sysfs: Path, mc: int, *, ce: int, ue: int, dimms: dict[int, tuple[int, int]]
) -> None:
    """One memory controller as `drivers/edac/edac_mc_sysfs.c` exposes it, DIMM and csrow views."""
    base = sysfs / EDAC_MC / f"mc{mc}"
    files = {
        "mc_name": f"Skylake Socket#{mc} IMC#0",
        "size_mb": "65536",
        "seconds_since_reset": "86400",
        "ce_count": str(ce),
        "ue_count": str(ue),
        "ce_noinfo_count": "0",
        "ue_noinfo_count": "0",
    }
    for n, (dimm_ce, dimm_ue) in dimms.items():
        label = f"CPU_SrcID#{mc}_MC#0_Chan#{n}_DIMM#0"
        files |= {
            f"dimm{n}/dimm_label": label,
            f"dimm{n}/dimm_location": f"channel {n} slot 0",
            f"dimm{n}/dimm_ce_count": str(dimm_ce),
            f"dimm{n}/dimm_ue_count": str(dimm_ue),
            f"dimm{n}/size": "32768",
            f"csrow{n}/ce_count": str(dimm_ce),
            f"csrow{n}/ue_count": str(dimm_ue),
            f"csrow{n}/ch0_ce_count": str(dimm_ce),
            f"csrow{n}/ch0_dimm_label": label,
        }
    for name, text in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text + "\n")


def test_read_the_tree(tmp_path: Path) -> None:
    write_edac(tmp_path, 0, ce=3, ue=0, dimms={0: (3, 0), 1: (0, 0)})
    write_edac(tmp_path, 1, ce=0, ue=0, dimms={})
    (tmp_path / EDAC_MC / "power").mkdir()  # sysfs keeps other entries beside mc*
    reading = read_edac(tmp_path)
    assert list(reading["controllers"]) == ["mc0", "mc1"]
    mc0 = reading["controllers"]["mc0"]
    assert (mc0["name"], mc0["ce_count"], mc0["ue_count"]) == ("Skylake Socket#0 IMC#0", 3, 0)
    assert mc0["dimms"]["dimm0"] == {"label": LABEL, "ce_count": 3, "ue_count": 0}
    assert mc0["csrows"]["csrow0"] == {"label": LABEL, "ce_count": 3, "ue_count": 0}
    assert reading["controllers"]["mc1"]["dimms"] == {}


def test_first_reading_reports_errors_since_boot(tmp_path: Path) -> None:
    write_edac(tmp_path, 0, ce=3, ue=0, dimms={0: (3, 0), 1: (0, 0)})
    [signal] = parse_edac(read_edac(tmp_path), host="h001", now=NOW)
    assert (signal.signature, signal.severity, signal.component, signal.observed_at) == (
        "edac_ce",
        Severity.WARNING,
        "mc0",
        NOW,
    )
    assert signal.title == f"h001: 3 corrected memory error(s) on mc0 ({LABEL})"
    assert signal.details == {
        "controller": "mc0",
        "mc_name": "Skylake Socket#0 IMC#0",
        "count": 3,
        "total": 3,
        "locations": [{"location": "dimm0", "label": LABEL, "count": 3}],
    }


def test_later_readings_report_increases_only(tmp_path: Path) -> None:
    write_edac(tmp_path, 0, ce=3, ue=0, dimms={0: (3, 0), 1: (0, 0)})
    first = read_edac(tmp_path)
    assert parse_edac(first, host="h001", now=NOW, previous=first) == []
    write_edac(tmp_path, 0, ce=5, ue=1, dimms={0: (3, 0), 1: (2, 1)})
    ce, ue = parse_edac(read_edac(tmp_path), host="h001", now=NOW, previous=first)
    assert (ce.signature, ce.details["count"], ce.details["total"]) == ("edac_ce", 2, 5)
    assert [loc["location"] for loc in ce.details["locations"]] == ["dimm1"]
    assert (ue.signature, ue.severity, ue.details["count"]) == ("edac_ue", Severity.CRITICAL, 1)


def test_a_reset_counter_counts_whole(tmp_path: Path) -> None:
    write_edac(tmp_path, 0, ce=40, ue=0, dimms={0: (40, 0)})
    before = read_edac(tmp_path)
    write_edac(tmp_path, 0, ce=2, ue=0, dimms={0: (2, 0)})  # rebooted: counting from zero
    [signal] = parse_edac(read_edac(tmp_path), host="h001", now=NOW, previous=before)
    assert signal.details["count"] == 2


def test_csrows_locate_errors_when_drivers_have_no_dimm_view(tmp_path: Path) -> None:
    write_edac(tmp_path, 0, ce=1, ue=0, dimms={0: (1, 0)})
    reading = read_edac(tmp_path)
    reading["controllers"]["mc0"]["dimms"] = {}
    [signal] = parse_edac(reading, host="h001", now=NOW)
    assert signal.details["locations"] == [{"location": "csrow0", "label": LABEL, "count": 1}]


def test_no_edac_driver_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable) as caught:
        read_edac(tmp_path)
    assert caught.value.detail == (
        f"no EDAC memory controllers under {tmp_path / EDAC_MC}: is an EDAC driver loaded for "
        "this platform (see `edac-util --status`)?"
    )
    if not (Path("/sys") / EDAC_MC).exists():  # this machine: no EDAC at all
        with pytest.raises(SourceUnavailable):
            read_edac()


def test_unreadable_counter_names_its_file(tmp_path: Path) -> None:
    write_edac(tmp_path, 0, ce=0, ue=0, dimms={})
    (tmp_path / EDAC_MC / "mc0" / "ue_count").write_text("n/a\n")
    with pytest.raises(SignalError) as caught:
        read_edac(tmp_path)
    assert caught.value.detail == (
        f"{tmp_path / EDAC_MC / 'mc0' / 'ue_count'} should hold a counter, found 'n/a'"
    )
    (tmp_path / EDAC_MC / "mc0" / "ue_count").unlink()
    with pytest.raises(SignalError, match="ue_count is missing: not an EDAC sysfs tree"):
        read_edac(tmp_path)


GOOD = {"controllers": {"mc0": {"ce_count": 1, "ue_count": 0}}}


@pytest.mark.parametrize(
    ("payload", "previous", "message"),
    [
        (
            "{",
            None,
            "EDAC reading is not JSON (Expecting property name enclosed in double quotes"
            " at line 1)",
        ),
        (
            {"mc0": {}},
            None,
            "EDAC reading must be an object with a non-empty `controllers` "
            "mapping (what `read_edac` or `fleetops device signals ingest --source edac /sys` "
            "sends)",
        ),
        (
            {"controllers": {"mc0": {"ce_count": -1, "ue_count": 0}}},
            None,
            "EDAC reading: controllers.mc0.ce_count must be a whole number of at least 0, got -1",
        ),
        (
            {"controllers": {"mc0": {"ce_count": "3", "ue_count": 0}}},
            None,
            "EDAC reading: controllers.mc0.ce_count must be a whole number of at least 0, got '3'",
        ),
        (
            {"controllers": {"mc0": {"ce_count": 1, "ue_count": 0, "dimms": []}}},
            None,
            "EDAC reading: controllers.mc0.dimms must be an object",
        ),
        (
            GOOD,
            {"controllers": {"mc0": {"ce_count": 1, "ue_count": True}}},
            "EDAC previous reading: controllers.mc0.ue_count must be a whole number of at least 0,"
            " got True",
        ),
    ],
)
def test_malformed_readings_are_refused_precisely(
    payload: Any, previous: Any, message: str
) -> None:
    with pytest.raises(SignalError) as caught:
        parse_edac(payload, host="h001", now=NOW, previous=previous)
    assert caught.value.detail == message
