"""IPMI SEL adapter: the real `ipmitool sel elist` reading a BMC's event log, then the parser.

No BMC exists here, so a small one answers ipmitool's `dummy` interface (a Unix socket speaking
ipmitool's own request/response structs) with a System Event Log: ipmitool itself decodes the
records and prints the lines the adapter reads.
"""

from __future__ import annotations

import calendar
import ctypes
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.devices.signals.exceptions import SignalError
from fleetops.devices.signals.ipmi import parse_sel, read_sel
from fleetops.findings.enums import Severity

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
SEL_FILE = DATA / "ipmitool_sel_elist.txt"

# SEL records: (time, sensor type, sensor number, event type, deasserted, event data 1).
# time "pre" is a record stamped before the BMC knew the time; "oem" a timestamped OEM record.
EVENTS: list[tuple[str, int, int, int, bool, int]] = [
    ("pre", 0x12, 0x01, 0x6F, False, 0x05),  # System Event: Timestamp Clock Sync
    ("oem", 0, 0, 0, False, 0),
    ("2026-04-01 09:58:12", 0x10, 0x07, 0x6F, False, 0x02),  # Log area reset/cleared
    ("2026-04-01 10:00:01", 0x0C, 0x53, 0x6F, False, 0x05),  # Correctable ECC logging limit
    ("2026-04-01 10:00:05", 0x0C, 0x53, 0x6F, False, 0x00),  # Correctable ECC
    ("2026-04-01 10:02:44", 0x0C, 0x53, 0x6F, False, 0x01),  # Uncorrectable ECC
    ("2026-04-01 10:03:00", 0x0D, 0x21, 0x6F, False, 0x01),  # Drive Fault
    ("2026-04-01 10:03:30", 0x0D, 0x21, 0x6F, True, 0x01),  # Drive Fault deasserted
    ("2026-04-01 10:04:10", 0x07, 0x60, 0x6F, False, 0x00),  # IERR
    ("2026-04-01 10:04:11", 0x07, 0x60, 0x6F, False, 0x0B),  # Uncorrectable machine check
    ("2026-04-01 10:05:00", 0x08, 0x70, 0x6F, False, 0x01),  # PSU Failure detected
    ("2026-04-01 10:05:20", 0x08, 0x70, 0x6F, False, 0x00),  # PSU Presence detected
    ("2026-04-01 10:06:00", 0x04, 0x41, 0x01, False, 0x52),  # Fan Lower Critical going low
    ("2026-04-01 10:06:30", 0x04, 0x42, 0x01, False, 0x50),  # Fan Lower Non-critical going low
    ("2026-04-01 10:07:00", 0x12, 0x01, 0x6F, False, 0x01),  # OEM System boot event
    ("2026-04-01 10:08:00", 0x01, 0x30, 0x01, False, 0x59),  # Temperature Upper Critical
]


class _Request(ctypes.Structure):  # ipmitool's `struct dummy_rq`
    _fields_ = (
        ("netfn", ctypes.c_uint8),
        ("lun", ctypes.c_uint8),
        ("cmd", ctypes.c_uint8),
        ("target_cmd", ctypes.c_uint8),
        ("data_len", ctypes.c_uint16),
        ("data", ctypes.c_void_p),
    )


class _Response(ctypes.Structure):  # ipmitool's `struct dummy_rs`
    _fields_ = (
        ("netfn", ctypes.c_uint8),
        ("cmd", ctypes.c_uint8),
        ("seq", ctypes.c_uint8),
        ("lun", ctypes.c_uint8),
        ("ccode", ctypes.c_uint8),
        ("data_len", ctypes.c_int),
        ("data", ctypes.c_void_p),
    )


def _record(record_id: int, event: tuple[str, int, int, int, bool, int]) -> bytes:
    """A 16-byte SEL record as the IPMI spec lays it out (little-endian)."""
    when, sensor_type, sensor, event_type, deasserted, data1 = event
    if when == "oem":  # timestamped OEM record: type 0xC1, manufacturer id, 6 OEM bytes
        stamp = calendar.timegm((2026, 4, 1, 9, 50, 0))
        return struct.pack("<HBI", record_id, 0xC1, stamp) + bytes.fromhex("570100aabbccddeeff")
    stamp = 42 if when == "pre" else calendar.timegm(time.strptime(when, "%Y-%m-%d %H:%M:%S"))
    direction = event_type | (0x80 if deasserted else 0)
    return struct.pack(
        "<HBIHBBBBBBB",
        record_id,
        0x02,
        stamp,
        0x0020,
        0x04,
        sensor_type,
        sensor,
        direction,
        data1,
        0xFF,
        0xFF,
    )


def _answer(netfn: int, cmd: int, data: bytes) -> tuple[int, bytes]:
    """The BMC's answer (completion code, data) to the commands `sel elist` sends."""
    if (netfn, cmd) == (0x06, 0x01):  # Get Device ID: IPMI 2.0, manufacturer 0 (no OEM)
        return 0, bytes([0x20, 0x01, 0x01, 0x00, 0x02, 0xBF, 0, 0, 0, 0, 0])
    if (netfn, cmd) == (0x0A, 0x40):  # Get SEL Info
        return 0, struct.pack("<BHHIIB", 0x51, len(EVENTS), 0x1000, 0, 0, 0x02)
    if (netfn, cmd) == (0x0A, 0x42):  # Reserve SEL
        return 0, struct.pack("<H", 1)
    if (netfn, cmd) == (0x0A, 0x43):  # Get SEL Entry: ids are 1..n, 0 is the first
        _, wanted, offset, length = struct.unpack("<HHBB", data)
        index = len(EVENTS) - 1 if wanted == 0xFFFF else max(wanted, 1) - 1
        if index >= len(EVENTS):
            return 0xCB, b""
        following = index + 2 if index + 1 < len(EVENTS) else 0xFFFF
        body = _record(index + 1, EVENTS[index])[offset : offset + length]
        return 0, struct.pack("<H", following) + body
    return 0xC1, b""  # invalid command: no SDR repository, so sensors print as `#0x53`


def _recv(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _serve(server: socket.socket, stop: threading.Event) -> None:
    server.settimeout(0.1)
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        with conn:
            try:
                while True:
                    request = _Request.from_buffer_copy(_recv(conn, ctypes.sizeof(_Request)))
                    data = _recv(conn, request.data_len) if request.data_len else b""
                    if (request.netfn, request.cmd) == (0x3F, 0xFF):  # "BYE"
                        break
                    code, body = _answer(request.netfn, request.cmd, data)
                    head = _Response(
                        netfn=request.netfn + 1, cmd=request.cmd, ccode=code, data_len=len(body)
                    )
                    conn.sendall(bytes(head) + body)
            except EOFError:
                pass


@pytest.fixture
def bmc() -> Iterator[Path]:
    """A BMC on a Unix socket, for `IPMI_DUMMY_SOCK=<path> ipmitool -I dummy ...`."""
    # A short path: a socket's address must fit 108 bytes, which a test's tmp_path may not.
    folder = Path(tempfile.mkdtemp(prefix="bmc-"))
    path = folder / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(server, stop), daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join(timeout=5)
    server.close()
    shutil.rmtree(folder)


def run_ipmitool(sock: Path, *args: str) -> str:
    binary = shutil.which("ipmitool")
    if binary is None:
        pytest.skip("ipmitool is not installed (apt-get install ipmitool)")
    result = subprocess.run(
        [binary, "-I", "dummy", *args],
        env={"IPMI_DUMMY_SOCK": str(sock), "TZ": "UTC", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_the_stored_dump_is_what_ipmitool_prints(bmc: Path) -> None:
    assert run_ipmitool(bmc, "sel", "elist") == SEL_FILE.read_text()


def test_real_elist_becomes_signals(bmc: Path) -> None:
    signals = parse_sel(run_ipmitool(bmc, "-Z", "sel", "elist"), host="h001", now=NOW)
    assert [(s.signature, s.severity, s.component, s.details["record"]) for s in signals] == [
        ("edac_ce", Severity.WARNING, "Memory #0x53", "4"),
        ("edac_ce", Severity.WARNING, "Memory #0x53", "5"),
        ("edac_ue", Severity.CRITICAL, "Memory #0x53", "6"),
        ("disk_io", Severity.CRITICAL, "Drive Slot / Bay #0x21", "7"),
        ("mce", Severity.CRITICAL, "Processor #0x60", "9"),
        ("mce", Severity.CRITICAL, "Processor #0x60", "a"),
        ("psu", Severity.CRITICAL, "Power Supply #0x70", "b"),
        ("fan", Severity.CRITICAL, "Fan #0x41", "d"),
        ("fan", Severity.WARNING, "Fan #0x42", "e"),
    ]
    ue = signals[2]
    assert ue.observed_at == datetime(2026, 4, 1, 10, 2, 44, tzinfo=UTC)
    assert ue.title == "h001: BMC event Memory #0x53: Uncorrectable ECC"
    assert ue.details["event_time"] == "2026-04-01T10:02:44+00:00"


def test_plain_list_reads_the_same(bmc: Path) -> None:
    listed = parse_sel(run_ipmitool(bmc, "sel", "list"), host="h001", now=NOW)
    assert listed == parse_sel(SEL_FILE.read_text(), host="h001", now=NOW)


def test_entries_keep_every_shape() -> None:
    entries = read_sel(SEL_FILE.read_text())
    assert len(entries) == len(EVENTS)
    pre, oem = entries[0], entries[1]
    assert (pre.record, pre.at, pre.sensor, pre.direction) == (
        "1",
        None,
        "System Event #0x01",
        "Asserted",
    )
    assert (oem.sensor, oem.direction) == ("OEM record c1", "aabbccddeeff")
    assert entries[7].direction == "Deasserted"


def test_previous_dump_suppresses_what_was_already_reported() -> None:
    text = SEL_FILE.read_text()
    assert parse_sel(text, host="h001", now=NOW, previous=text) == []
    first_half = "\n".join(text.splitlines()[:6]) + "\n"
    later = parse_sel(text, host="h001", now=NOW, previous=first_half)
    assert [s.details["record"] for s in later] == ["7", "9", "a", "b", "d", "e"]


def test_older_ipmitool_format_and_sdr_names() -> None:
    text = (
        "   1 | 03/14/2019 | 17:21:09 | Memory DIMM_B2 | Uncorrectable ECC | Asserted\n"
        "   2 | 03/14/2019 | 17:22:10 | Fan FAN3 | Lower Critical going low  | Asserted"
        " | Reading 0 < Threshold 600 RPM\n"
        "   3 | 03/14/2019 | 17:23:00 | Power Supply PS2 Status | Power Supply AC lost |"
        " Asserted\n"
        "SEL has no entries\n"
    )
    signals = parse_sel(text, host="h001", now=NOW)
    assert [(s.signature, s.severity, s.component) for s in signals] == [
        ("edac_ue", Severity.CRITICAL, "Memory DIMM_B2"),
        ("fan", Severity.CRITICAL, "Fan FAN3"),
        ("psu", Severity.WARNING, "Power Supply PS2 Status"),
    ]
    assert signals[0].observed_at == datetime(2019, 3, 14, 17, 21, 9, tzinfo=UTC)


def test_pre_init_events_take_the_reading_time() -> None:
    line = "  5 |  Pre-Init  |0000000011| Processor #0x60 | IERR | Asserted\n"
    [signal] = parse_sel(line, host="h001", now=NOW)
    assert (signal.signature, signal.observed_at, signal.details["event_time"]) == (
        "mce",
        NOW,
        "pre-init",
    )


def test_empty_log_has_no_signals() -> None:
    assert parse_sel("SEL has no entries\n", host="h001", now=NOW) == []
    assert parse_sel("", host="h001", now=NOW) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0\n",
            "SEL line 1 is not `ipmitool sel elist` output (id | date | time | sensor | event |"
            " direction): 'Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0'",
        ),
        (
            "   1 | 04/01/26 | 10:00:01 UTC | Memory #0x53 | Correctable ECC | Asserted\n"
            "   2 | 04/01/26 | 12:00:01 CEST | Memory #0x53 | Correctable ECC | Asserted\n",
            "SEL line 2: time zone CEST cannot be read as UTC; run `ipmitool -Z sel elist` to"
            " print UTC times",
        ),
        (
            "   1 | 2026-04-01 | 10:00:01 | Memory #0x53 | Correctable ECC | Asserted\n",
            "SEL line 1: cannot read the time 2026-04-01 '10:00:01' (expected MM/DD/YY or"
            " MM/DD/YYYY and HH:MM:SS)",
        ),
        (
            "   1 | 13/45/26 | 10:00:01 | Memory #0x53 | Correctable ECC | Asserted\n",
            "SEL line 1: month must be in 1..12 in 13/45/26 10:00:01",
        ),
    ],
)
def test_malformed_dumps_name_the_line(text: str, message: str) -> None:
    with pytest.raises(SignalError) as caught:
        parse_sel(text, host="h001", now=NOW)
    assert caught.value.detail == message
    assert caught.value.status_code == 422
