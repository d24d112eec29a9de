"""The syslog listener end to end: util-linux `logger` and rsyslog send to a real SyslogServer.

Senders are the real tools over real sockets; the sink is a small recording `Sink`
implementation, so what is asserted is exactly what the ingest pipeline would be handed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fleetops.logs.ingest.records import IngestResult, LogRecord, Overloaded
from fleetops.logs.ingest.syslog import (
    UDP_IN_FLIGHT,
    SenderBinding,
    SyslogServer,
    parse_allow_list,
)
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.anyio

LOGGER = shutil.which("logger")
needs_logger = pytest.mark.skipif(LOGGER is None, reason="util-linux `logger` is not installed")


@pytest.fixture
def anyio_backend() -> str:
    """The server runs on asyncio; so do these tests."""
    return "asyncio"


class RecordingSink:
    """A Sink that keeps what it is given; `gate` (when set) holds every submit until opened."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self.batches: list[tuple[str, int, bool]] = []  # (source, size, wait)
        self.gate: asyncio.Event | None = None
        self.waiting = 0

    async def submit(
        self, source: str, records: Sequence[LogRecord], *, wait: bool = False
    ) -> IngestResult:
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        self.batches.append((source, len(records), wait))
        self.records.extend(records)
        return IngestResult(accepted=len(records))


class OverloadedSink(RecordingSink):
    """A full pipeline: refuses whatever does not wait."""

    async def submit(
        self, source: str, records: Sequence[LogRecord], *, wait: bool = False
    ) -> IngestResult:
        if not wait:
            raise Overloaded(retry_after=1.0)
        return await super().submit(source, records, wait=wait)


class FailingOnceSink(RecordingSink):
    """A pipeline whose first commit fails (a database error, say)."""

    failed = False

    async def submit(
        self, source: str, records: Sequence[LogRecord], *, wait: bool = False
    ) -> IngestResult:
        if not self.failed:
            self.failed = True
            raise RuntimeError("database is locked")
        return await super().submit(source, records, wait=wait)


@contextlib.asynccontextmanager
async def serving(sink: RecordingSink, **options: Any) -> AsyncIterator[SyslogServer]:
    options = {"host": "127.0.0.1", "tcp_port": 0, "udp_port": 0, "allow": [], **options}
    server = SyslogServer(sink, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def logger(*args: str, stdin: bytes | None = None) -> None:
    assert LOGGER is not None
    proc = await asyncio.create_subprocess_exec(
        LOGGER,
        *args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await proc.communicate(stdin)
    assert proc.returncode == 0, err.decode()


# --- logger --------------------------------------------------------------------------------


@needs_logger
async def test_logger_rfc5424_over_tcp_with_structured_data() -> None:
    sink = RecordingSink()
    async with serving(sink) as server:
        await logger(
            *("--server", "127.0.0.1", "--port", str(server.tcp_port), "--tcp", "--rfc5424"),
            *("-t", "raidmon", "--id=314", "-p", "daemon.err", "--msgid", "DISKFAIL"),
            *("--sd-id", "disk@32473", "--sd-param", 'slot="7"', "--sd-param", 'serial="Z\\]1"'),
            "disk 7 failed: medium error",
        )
        await eventually(lambda: len(sink.records) == 1)
    record = sink.records[0]
    assert record.message == "disk 7 failed: medium error"
    assert record.host == socket.gethostname()
    assert record.ts is not None
    assert record.labels["facility"] == "daemon"
    assert record.labels["severity"] == "err"
    assert record.labels["app"] == "raidmon"
    assert record.labels["procid"] == "314"
    assert record.labels["msgid"] == "DISKFAIL"
    assert record.labels["sd.disk@32473.slot"] == "7"
    assert record.labels["sd.disk@32473.serial"] == "Z]1"
    assert record.labels["sd.timeQuality.tzKnown"] == "1"
    assert (record.labels["transport"], record.labels["peer"]) == ("tcp", "127.0.0.1")
    assert sink.batches == [("syslog", 1, True)]
    assert server.stats.received == 1
    assert server.stats.parse_fallbacks == 0


@needs_logger
@pytest.mark.parametrize("framing", [[], ["--octet-count"]], ids=["newline", "octet-count"])
@pytest.mark.parametrize("protocol", ["--rfc5424", "--rfc3164"])
async def test_logger_lines_over_tcp(framing: list[str], protocol: str) -> None:
    lines = [f'line {i}: état ✓ [x] "q"' for i in range(50)]
    sink = RecordingSink()
    async with serving(sink) as server:
        await logger(
            *("--server", "127.0.0.1", "--port", str(server.tcp_port), "--tcp", protocol),
            *(*framing, "-t", "fsck", "-i", "-p", "local5.warning"),
            stdin="\n".join(lines).encode() + b"\n",
        )
        await eventually(lambda: len(sink.records) == len(lines))
    assert [r.message for r in sink.records] == lines
    hostname = socket.gethostname()
    expected_host = hostname if protocol == "--rfc5424" else hostname.split(".")[0]
    for record in sink.records:
        assert record.host == expected_host
        assert record.labels["app"] == "fsck"
        assert record.labels["procid"].isdigit()
        assert (record.labels["facility"], record.labels["severity"]) == ("local5", "warning")
    assert server.stats.parse_fallbacks == 0


@needs_logger
@pytest.mark.parametrize("protocol", ["--rfc5424", "--rfc3164"])
async def test_logger_over_udp(protocol: str) -> None:
    sink = RecordingSink()
    async with serving(sink) as server:
        for i in range(3):
            await logger(
                *("--server", "127.0.0.1", "--port", str(server.udp_port), "--udp", protocol),
                *("-t", "ntpd", "-p", "authpriv.notice"),
                f"clock step {i}",
            )
        await eventually(lambda: len(sink.records) == 3)
    assert sorted(r.message for r in sink.records) == [
        "clock step 0",
        "clock step 1",
        "clock step 2",
    ]
    for record in sink.records:
        assert (record.labels["transport"], record.labels["app"]) == ("udp", "ntpd")
        assert (record.labels["facility"], record.labels["severity"]) == ("authpriv", "notice")
        assert record.size > len(record.message)
    assert all(wait is False for _, _, wait in sink.batches)


# --- batching, stop, errors ----------------------------------------------------------------


async def test_a_partial_batch_is_sent_after_the_delay_and_stop_flushes_the_rest() -> None:
    sink = RecordingSink()
    async with serving(sink, batch_delay=0.2) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        writer.write(b"<13>1 - h app - - - first\n<13>1 - h app - - - second\n")
        await writer.drain()
        await eventually(lambda: len(sink.records) == 2, timeout=5)  # connection still open
    slow = RecordingSink()
    async with serving(slow, batch_delay=60) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        writer.write(b"<13>1 - h app - - - pending over tcp\n")
        await writer.drain()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"<13>1 - h app - - - pending over udp", ("127.0.0.1", server.udp_port))
        await eventually(lambda: server.stats.received == 2)
        assert slow.records == []
    assert sorted(r.message for r in slow.records) == ["pending over tcp", "pending over udp"]


async def test_a_failing_sink_does_not_stop_the_listener(caplog: pytest.LogCaptureFixture) -> None:
    sink = FailingOnceSink()
    async with serving(sink) as server:
        for text in (b"lost", b"kept"):
            _, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
            writer.write(b"<13>1 - h app - - - " + text + b"\n")
            writer.close()
            await eventually(lambda: server.stats.sink_errors == 1)
        await eventually(lambda: len(sink.records) == 1)
    assert sink.records[0].message == "kept"
    assert "database is locked" in caplog.text


# --- allow-list ----------------------------------------------------------------------------


async def test_peers_outside_the_allow_list_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    sink = RecordingSink()
    caplog.set_level(logging.WARNING)
    async with serving(sink, allow=["192.0.2.0/24", "2001:db8::/32"]) as server:
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
            writer.write(b"<13>1 - h app - - - let me in\n")
            try:  # closed at once: end of stream, or a reset since what was sent is unread
                assert await asyncio.wait_for(reader.read(), 5) == b""
            except ConnectionResetError:
                pass
            writer.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"<13>1 - h app - - - udp too", ("127.0.0.1", server.udp_port))
        await eventually(lambda: server.stats.rejected_peers == 4)
    assert sink.records == []
    assert server.stats.received == 0
    refusals = [r for r in caplog.records if "allow-list" in r.getMessage()]
    assert len(refusals) == 1  # once per address per minute


FORGED = "kernel: EXT4-fs error (device sdb1): ext4_find_entry: reading directory lblock 0"


async def test_a_sender_speaks_only_for_the_hosts_at_its_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A forged line naming another host would drain it: refused, counted, reported once."""
    sink, reported = RecordingSink(), threading.Event()
    heard: list[tuple[str, str]] = []

    def on_foreign(peer: str, host: str) -> None:
        heard.append((peer, host))
        reported.set()

    binding = SenderBinding([])  # no relays: loopback speaks for itself alone
    binding.update([("h001", "127.0.0.1"), ("h002", "10.0.0.2")])
    caplog.set_level(logging.WARNING)
    async with serving(sink, binding=binding, on_foreign=on_foreign) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        for host, text in [("h001", "mine"), ("h002", FORGED), ("h003", FORGED), ("h001", "ok")]:
            writer.write(f"<13>1 - {host} kernel - - - {text}\n".encode())
        await writer.drain()
        writer.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(
                f"<13>1 - h002 kernel - - - {FORGED}".encode(), ("127.0.0.1", server.udp_port)
            )
            udp.sendto(b"<13>1 - 127.0.0.1 kernel - - - by address", ("127.0.0.1", server.udp_port))
        await eventually(lambda: server.stats.received == 6 and len(sink.records) == 3)
        await eventually(reported.is_set)
    assert [(r.host, r.message) for r in sink.records] == [
        ("h001", "mine"), ("h001", "ok"), ("127.0.0.1", "by address"),
    ]  # fmt: skip
    assert server.stats.foreign_lines == 3
    assert heard == [("127.0.0.1", "h002")]  # once a minute per sender
    assert len([r for r in caplog.records if "syslog_relays" in r.getMessage()]) == 1


def test_a_relay_speaks_for_every_host() -> None:
    binding = SenderBinding(["10.1.0.0/24", "::1"])
    binding.update([("h001", "10.0.0.1"), ("web", "")])
    assert binding.allows("10.1.0.9", "h001")  # the central rsyslog
    assert binding.allows("::1", "anything")
    assert binding.allows("10.0.0.1", "h001")
    assert not binding.allows("10.0.0.1", "web")
    assert binding.allows("web", "web")  # a host without an address is its name
    assert not binding.allows("10.0.0.3", "h001")


async def test_an_explicit_allow_list_admits_its_networks() -> None:
    sink = RecordingSink()
    async with serving(sink, allow=["10.0.0.0/8", "127.0.0.1/32"]) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        writer.write(b"<13>1 - h app - - - welcome\n")
        writer.close()
        await eventually(lambda: len(sink.records) == 1)
    assert server.stats.rejected_peers == 0
    with pytest.raises(ValueError, match="not an address or CIDR"):
        parse_allow_list(["10.0.0.0/8", "bogus"])


async def test_ipv6_loopback_is_allowed_by_default() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    sink = RecordingSink()
    server = SyslogServer(sink, host="::1", tcp_port=0, udp_port=None, allow=[])
    try:
        await server.start()
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    try:
        _, writer = await asyncio.open_connection("::1", server.tcp_port)
        writer.write(b"<13>1 - - app - - - over v6\n")
        writer.close()
        await eventually(lambda: len(sink.records) == 1)
    finally:
        await server.stop()
    assert (sink.records[0].host, sink.records[0].labels["peer"]) == ("::1", "::1")


# --- bounds: oversize frames, UDP overload, TCP backpressure -------------------------------


async def test_oversize_frames_are_cut_and_counted() -> None:
    sink = RecordingSink()
    async with serving(sink, max_frame=1024) as server:
        head = b"<13>1 - h app - - - "
        huge = head + b"a" * 300_000
        _, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        writer.write(b"%d %s" % (len(huge), huge))
        writer.write(head + b"b" * 200_000 + b"\n")
        writer.write(head + b"then a normal one\n")
        writer.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(head + b"c" * 5000, ("127.0.0.1", server.udp_port))
        await eventually(lambda: len(sink.records) == 4)
    by_text = {r.message[:1]: r for r in sink.records}
    assert by_text["a"].message == "a" * (1024 - len(head))
    assert by_text["b"].message == "b" * (1024 - len(head))
    assert by_text["c"].message == "c" * (1024 - len(head))
    assert by_text["c"].size == len(head) + 5000  # bytes received, before the cut
    assert by_text["a"].size == 1024
    assert by_text["t"].message == "then a normal one"
    assert server.stats.oversize == 3


async def test_udp_drops_are_counted_when_the_pipeline_is_overloaded() -> None:
    sink = OverloadedSink()
    async with serving(sink, batch_lines=10, batch_delay=0.05) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for i in range(45):
                udp.sendto(b"<13>1 - h app - - - n%d" % i, ("127.0.0.1", server.udp_port))
                await asyncio.sleep(0)
        await eventually(lambda: server.stats.dropped_udp == 45)
    assert server.stats.received == 45
    assert sink.records == []


async def test_udp_never_queues_more_than_a_few_batches_while_the_sink_is_slow() -> None:
    sink = RecordingSink()
    sink.gate = asyncio.Event()
    batch = 10
    async with serving(sink, batch_lines=batch, batch_delay=0.05) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for i in range(500):
                udp.sendto(b"<13>1 - h app - - - n%d" % i, ("127.0.0.1", server.udp_port))
                if i % 20 == 0:
                    await asyncio.sleep(0.001)
        await eventually(lambda: server.stats.received >= 400)
        await asyncio.sleep(0.3)
        held = server.stats.received - server.stats.dropped_udp
        assert held <= (UDP_IN_FLIGHT + 1) * batch
        assert sink.waiting == UDP_IN_FLIGHT
        sink.gate.set()
    assert len(sink.records) == server.stats.received - server.stats.dropped_udp


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
async def test_tcp_backpressure_stalls_the_sender_and_loses_nothing() -> None:
    """A full sink stops the connection being read; the sender's writes block in the kernel."""
    sink = RecordingSink()
    sink.gate = asyncio.Event()
    line_size, total_mb, batch = 1000, 96, 100
    lines = total_mb * 1024 * 1024 // line_size
    sent = [0]

    def send(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            block: list[bytes] = []
            for i in range(lines):
                head = b"<14>1 2026-03-10T12:00:00Z node-1 bp - - - seq=%08d " % i
                block.append(head + b"x" * (line_size - len(head) - 1) + b"\n")
                if len(block) == 64 or i == lines - 1:
                    data = b"".join(block)
                    sock.sendall(data)
                    sent[0] += len(data)
                    block.clear()

    async with serving(sink, batch_lines=batch) as server:
        rss_before = rss_bytes()
        sender = threading.Thread(target=send, args=(server.tcp_port,), daemon=True)
        sender.start()
        await eventually(lambda: sink.waiting == 1)
        await asyncio.sleep(2.0)  # let the kernel buffers fill
        sent_blocked, received_blocked = sent[0], server.stats.received
        await asyncio.sleep(1.5)
        assert sent[0] == sent_blocked, "the sender kept writing while the sink was full"
        assert sent_blocked < lines * line_size // 2
        assert server.stats.received == received_blocked <= batch
        rss_growth = rss_bytes() - rss_before
        assert rss_growth < 32 * 1024 * 1024
        sink.gate.set()
        await eventually(lambda: len(sink.records) == lines, timeout=120)
        await asyncio.to_thread(sender.join, 30)
    assert [int(r.message[4:12]) for r in sink.records] == list(range(lines))
    print(  # noqa: T201  (the figure is the point of the test)
        f"\nbackpressure: sender stalled after {sent_blocked / 2**20:.1f} MiB of {total_mb} MiB;"
        f" {received_blocked} lines parsed while blocked; RSS +{rss_growth / 2**20:.1f} MiB"
    )


# --- rsyslog -------------------------------------------------------------------------------

RSYSLOGD = Path("/usr/sbin/rsyslogd")


def ensure_rsyslogd() -> None:
    """Install rsyslog when missing and we may (root with apt); skip otherwise."""
    if RSYSLOGD.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            f"{RSYSLOGD} is missing and this is not root with apt (apt-get install rsyslog)"
        )
    with open(Path(tempfile.gettempdir()) / "fleetops-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        if RSYSLOGD.exists():
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "rsyslog"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.skip(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def rsyslogd() -> Path:
    ensure_rsyslogd()
    return RSYSLOGD


RSYSLOG_CONF = """\
global(workDirectory="{work}" localHostname="fleet-node-7")
module(load="imfile")
input(type="imfile" file="{source}" tag="storaged:" facility="local3" severity="warning")
action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
       TCP_Framing="{framing}" template="{template}")
"""


@contextlib.contextmanager
def running_rsyslogd(binary: Path, workdir: Path, conf: str) -> Any:
    config = workdir / "rsyslog.conf"
    config.write_text(conf)
    check = subprocess.run(
        [str(binary), "-N1", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    log_path = workdir / "rsyslogd.out"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [str(binary), "-n", "-f", str(config), "-i", str(workdir / "rsyslogd.pid")],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.mark.parametrize(
    ("framing", "template"),
    [
        ("octet-counted", "RSYSLOG_SyslogProtocol23Format"),
        ("traditional", "RSYSLOG_ForwardFormat"),
    ],
)
async def test_rsyslog_forwards_over_tcp(
    rsyslogd: Path, tmp_path: Path, framing: str, template: str
) -> None:
    source = tmp_path / "storage.log"
    early = [f'early {i} ✓ [sd-like] "quoted" \\back' for i in range(100)]
    late = [f"late {i} " + "y" * (i * 30) for i in range(100)]
    source.write_text("".join(f"{line}\n" for line in early))
    sink = RecordingSink()
    async with serving(sink, batch_delay=0.05) as server:
        conf = RSYSLOG_CONF.format(
            work=tmp_path, source=source, port=server.tcp_port, framing=framing, template=template
        )
        with running_rsyslogd(rsyslogd, tmp_path, conf):
            await eventually(lambda: len(forwarded(sink)) == len(early), timeout=30)
            with source.open("a") as out:
                out.writelines(f"{line}\n" for line in late)
            await eventually(lambda: len(forwarded(sink)) == len(early) + len(late), timeout=30)
    records = forwarded(sink)
    assert [r.message for r in records] == early + late
    for record in records:
        assert record.host == "fleet-node-7"
        assert (record.labels["facility"], record.labels["severity"]) == ("local3", "warning")
        assert record.ts is not None
    assert server.stats.parse_fallbacks == 0
    assert server.stats.oversize == 0


def forwarded(sink: RecordingSink) -> list[LogRecord]:
    """Lines read from the file (rsyslogd's own start/stop notices also arrive)."""
    return [r for r in sink.records if r.labels.get("app") == "storaged"]
