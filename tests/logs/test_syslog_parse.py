"""Syslog parsing and TCP framing: real messages from `logger`, the RFC examples, and fuzzing."""

from __future__ import annotations

import shutil
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetops.logs.ingest.records import LogRecord
from fleetops.logs.ingest.syslog_framing import SyslogFramer
from fleetops.logs.ingest.syslog_parse import parse_message, parse_message_checked

NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
PEER = "192.0.2.10"


def parse(data: bytes, now: datetime = NOW) -> LogRecord:
    return parse_message(data, peer=PEER, now=now)


def test_rfc5424_with_structured_data_and_escapes() -> None:
    data = (
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Appli\\"cation\\]" eventID="1011\\\\x"]'
        b'[examplePriority@32473 class="high"] \xef\xbb\xbfAn application event log entry...\n'
    )
    record = parse_message(data, peer=PEER, now=NOW, transport="tcp")
    assert record.host == "mymachine.example.com"
    assert record.ts == datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)
    assert record.message == "An application event log entry..."
    assert record.size == len(data)
    assert record.labels == {
        "transport": "tcp",
        "peer": PEER,
        "facility": "local4",
        "severity": "notice",
        "app": "evntslog",
        "procid": "42",
        "msgid": "ID47",
        "sd.exampleSDID@32473.iut": "3",
        "sd.exampleSDID@32473.eventSource": 'Appli"cation]',
        "sd.exampleSDID@32473.eventID": "1011\\x",
        "sd.examplePriority@32473.class": "high",
    }


def test_rfc5424_nil_values_fall_back_to_the_peer() -> None:
    record = parse_message(b"<13>1 - - - - - - just text", peer=PEER, now=NOW)
    assert (record.host, record.ts, record.message) == (PEER, None, "just text")
    assert set(record.labels) == {"peer", "facility", "severity"}


def test_rfc5424_offsets_become_utc_and_broken_sd_stays_in_the_message() -> None:
    record = parse(b'<11>1 2026-03-10T14:00:00.5+02:00 h app - - [unterminated x="1" tail')
    assert record.ts == datetime(2026, 3, 10, 12, 0, 0, 500000, tzinfo=UTC)
    assert record.message == '[unterminated x="1" tail'
    assert record.labels["severity"] == "err"


def test_rfc3164_with_pid() -> None:
    record = parse(b"<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick")
    assert record.host == "mymachine"
    assert record.ts == datetime(2025, 10, 11, 22, 14, 15, tzinfo=UTC)  # nearest to March 2026
    assert record.message == "'su root' failed for lonvick"
    assert record.labels["facility"] == "auth"
    assert record.labels["severity"] == "crit"
    assert (record.labels["app"], record.labels["procid"]) == ("su", "230")


@pytest.mark.parametrize(
    ("stamp", "now", "expected"),
    [
        (
            "Dec 31 23:59:59",
            datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC),
            datetime(2025, 12, 31, 23, 59, 59),
        ),
        (
            "Jan  1 00:00:01",
            datetime(2025, 12, 31, 23, 59, 0, tzinfo=UTC),
            datetime(2026, 1, 1, 0, 0, 1),
        ),
        ("Feb 29 10:00:00", datetime(2025, 3, 1, tzinfo=UTC), datetime(2024, 2, 29, 10, 0, 0)),
        ("Mar  9 08:07:06.250", NOW, datetime(2026, 3, 9, 8, 7, 6, 250000)),
        ("Mar 9 2019 08:07:06", NOW, datetime(2019, 3, 9, 8, 7, 6)),
    ],
)
def test_bsd_timestamps_take_the_year_nearest_to_now(
    stamp: str, now: datetime, expected: datetime
) -> None:
    record = parse(f"<13>{stamp} host app: text".encode(), now=now)
    assert record.ts == expected.replace(tzinfo=UTC)
    assert (record.host, record.labels["app"], record.message) == ("host", "app", "text")


def test_rfc3164_variants_without_pri_with_iso_time_and_without_host() -> None:
    no_pri = parse(b"Mar 10 11:59:00 web-3 nginx: GET /")
    assert (no_pri.host, no_pri.labels.get("app"), no_pri.message) == ("web-3", "nginx", "GET /")
    assert "facility" not in no_pri.labels
    iso = parse(b"<30>2026-03-10T11:59:00.123456-05:00 db-1 postgres[77]: ready\n")
    assert iso.ts == datetime(2026, 3, 10, 16, 59, 0, 123456, tzinfo=UTC)
    assert (iso.host, iso.labels["procid"], iso.message) == ("db-1", "77", "ready")
    local = parse(b"<13>Mar 10 11:59:00 cron[12]: job done")
    assert (local.host, local.labels["app"], local.message) == (PEER, "cron", "job done")


@pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger is not installed")
def test_logger_to_a_local_socket_sends_no_hostname(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(10)
        subprocess.run(
            ["logger", "-u", path, "-t", "backup", "--id=4242", "-p", "cron.info", "nightly ok"],
            check=True,
            timeout=10,
        )
        data = sock.recv(65536)
    record = parse_message(data, peer="127.0.0.1", now=datetime.now(UTC))
    assert record.host == "127.0.0.1"
    assert record.message == "nightly ok"
    assert record.ts is not None
    assert abs((record.ts - datetime.now(UTC)).total_seconds()) < 60
    assert record.labels == {
        "peer": "127.0.0.1",
        "facility": "cron",
        "severity": "info",
        "app": "backup",
        "procid": "4242",
    }


def test_garbage_keeps_the_raw_text_and_invalid_utf8_is_replaced() -> None:
    record, recognised = parse_message_checked(b"\xff\xfenot syslog\n", peer=PEER, now=NOW)
    assert not recognised
    assert record.message == "\ufffd\ufffdnot syslog"
    assert (record.host, record.ts, record.invalid_utf8, record.size) == (PEER, None, True, 13)
    assert record.labels == {"peer": PEER}
    bad_pri = parse(b"<999>text")
    assert bad_pri.message == "<999>text"
    only_pri = parse(b"<14>no header at all")
    assert (only_pri.message, only_pri.labels["severity"]) == ("no header at all", "info")


def test_long_messages_are_not_truncated_by_the_parser() -> None:
    body = "x" * 200_000
    record = parse(f"<13>1 - h a - - - {body}".encode())
    assert record.message == body


# --- fuzzing -------------------------------------------------------------------------------

PREFIXES = [
    b"",
    b"<13>",
    b"<13>1 ",
    b"<190>Mar 10 ",
    b"<0>2026-03-10T",
    b"<13>1 - - - - - [",
    b"Mar",
]


@settings(deadline=None, max_examples=300)
@given(prefix=st.sampled_from(PREFIXES), data=st.binary(max_size=300))
def test_parse_never_raises_and_counts_every_byte(prefix: bytes, data: bytes) -> None:
    raw = prefix + data
    record = parse_message(raw, peer=PEER, now=NOW, transport="udp")
    assert record.size == len(raw)
    assert isinstance(record.message, str)
    assert record.host
    assert record.labels["peer"] == PEER
    assert record.ts is None or record.ts.tzinfo is not None


sd_text = st.text(st.characters(codec="utf-8"), max_size=20)
sd_name = st.text(st.sampled_from("abcXYZ019@.-_"), min_size=1, max_size=12)
token = st.text(st.sampled_from("abcdefghXYZ0123456789.-_/"), min_size=1, max_size=20).filter(
    lambda t: t != "-"  # NILVALUE
)


@settings(deadline=None, max_examples=200)
@given(
    host=token,
    app=token,
    msgid=token,
    params=st.dictionaries(sd_name, sd_text, max_size=4),
    message=st.text(max_size=50).map(lambda m: m.rstrip("\r\n\x00").lstrip("\ufeff")),
)
def test_rfc5424_fields_round_trip(
    host: str, app: str, msgid: str, params: dict[str, str], message: str
) -> None:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")

    sd = "[id@1" + "".join(f' {k}="{escape(v)}"' for k, v in params.items()) + "]"
    raw = f"<86>1 2026-03-10T12:00:00Z {host} {app} 9 {msgid} {sd} {message}".encode()
    record = parse_message(raw, peer=PEER, now=NOW)
    assert (record.host, record.message) == (host, message)
    assert (record.labels["app"], record.labels["msgid"]) == (app, msgid)
    assert {k.removeprefix("sd.id@1."): v for k, v in record.labels.items() if k[:3] == "sd."} == (
        params
    )


# --- framing -------------------------------------------------------------------------------


def test_framer_handles_octet_counting_and_newline_framing_together() -> None:
    framer = SyslogFramer(1024)
    stream = b"11 <13>1 hello\n\nline one\r\nline two\x0012 <13>counted" + b"\n" + b"2026-ts\n"
    frames = [f for i in range(len(stream)) for f in framer.feed(stream[i : i + 1])]
    assert frames == [b"<13>1 hello", b"line one", b"line two", b"<13>counted\n", b"2026-ts"]
    assert framer.oversize == 0
    assert framer.feed(b"last line without LF") == []
    assert framer.flush() == [b"last line without LF"]


def test_framer_cuts_oversize_frames_and_resumes_at_the_next_boundary() -> None:
    framer = SyslogFramer(64)
    counted = b"100000 " + b"a" * 100_000
    line = b"b" * 70_000 + b"\n"
    frames = framer.feed(counted + line + b"5 short" + b"ok\n")
    assert frames == [b"a" * 64, b"b" * 64, b"short", b"ok"]
    assert framer.oversize == 2
    assert framer.buffered == 0


def test_framer_line_of_exactly_max_frame_with_crlf_split_across_chunks() -> None:
    framer = SyslogFramer(16)
    assert framer.feed(b"x" * 16 + b"\r") == []
    assert framer.buffered == 16
    assert framer.feed(b"\nnext\n") == [b"x" * 16, b"next"]
    assert framer.oversize == 0


def line_frame(max_frame: int) -> st.SearchStrategy[bytes]:
    """A newline-framed message: no LF/NUL inside, no trailing CR, not mistaken for a count."""
    body = st.binary(min_size=1, max_size=max_frame).map(
        lambda b: b.replace(b"\n", b"n").replace(b"\x00", b"z").rstrip(b"\r")
    )
    return body.filter(lambda b: bool(b) and not (b[:1].isdigit() and b[:1] != b"0"))


@settings(deadline=None, max_examples=300)
@given(data=st.data(), max_frame=st.integers(16, 300))
def test_framer_never_loses_or_invents_bytes(data: st.DataObject, max_frame: int) -> None:
    frames: list[bytes] = []
    wire = b""
    for _ in range(data.draw(st.integers(0, 20))):
        if data.draw(st.booleans()):
            body = data.draw(st.binary(min_size=1, max_size=max_frame))
            wire += b"%d %s" % (len(body), body)
        else:
            body = data.draw(line_frame(max_frame))
            wire += body + data.draw(st.sampled_from([b"\n", b"\r\n", b"\x00"]))
        frames.append(body)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    framer = SyslogFramer(max_frame)
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        out += framer.feed(wire[start:end])
        assert framer.buffered <= max_frame
    out += framer.flush()
    assert out == frames
    assert framer.oversize == 0


@settings(deadline=None, max_examples=300)
@given(
    chunks=st.lists(
        st.one_of(st.binary(max_size=400), st.sampled_from([b"99999 ", b"\n", b"\r", b"7 ", b"1"])),
        max_size=30,
    ),
    max_frame=st.integers(16, 128),
)
def test_framer_memory_is_bounded_for_any_input(chunks: list[bytes], max_frame: int) -> None:
    framer = SyslogFramer(max_frame)
    for chunk in chunks:
        for frame in framer.feed(chunk):
            assert 0 < len(frame) <= max_frame
        assert framer.buffered <= max_frame
    assert all(len(frame) <= max_frame for frame in framer.flush())
