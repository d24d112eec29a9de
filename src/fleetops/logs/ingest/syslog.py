"""Syslog ingestion: RFC 5424 and RFC 3164 messages over TCP (RFC 6587 framing) and UDP.

Every router, switch, BMC and Linux host can already send syslog, so this listener is how most of
a fleet's logs arrive without installing anything. The parsers are pure and never raise: whatever
a device sends becomes a `LogRecord` (unrecognised text is kept whole), because a log line that
is dropped for being malformed is often the one that explains an outage. Memory is bounded
everywhere: frames are cut at `max_frame`, a TCP connection holds at most one batch and stops
being read while the sink is full, and UDP (which cannot push back) counts what it drops.

This module is the listener and the public place for syslog names; the pure parts live in
`syslog_parse` (messages) and `syslog_framing` (the TCP byte stream).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fleetops.logs.ingest.records import LogRecord, Overloaded, Sink
from fleetops.logs.ingest.syslog_framing import SyslogFramer
from fleetops.logs.ingest.syslog_parse import parse_message_checked

log = logging.getLogger(__name__)

LOOPBACK_ONLY = ("127.0.0.0/8", "::1/128")
READ_SIZE = 65536
UDP_IN_FLIGHT = 2  # UDP batches being committed at once; beyond that, datagrams are dropped
STOP_GRACE_S = 5.0
REJECT_LOG_INTERVAL_S = 60.0


@dataclass(slots=True)
class SyslogStats:
    """Counters since start; `received` counts messages parsed, dropped or not."""

    received: int = 0
    rejected_peers: int = 0
    oversize: int = 0
    dropped_udp: int = 0
    parse_fallbacks: int = 0
    sink_errors: int = 0
    foreign_lines: int = 0  # lines naming a host their sender may not speak for


class SenderBinding:
    """Which hosts a syslog sender may speak for.

    A relay (an address in `relays`, e.g. the central rsyslog) may name any host; any other
    sender only the inventory hosts at its own address, or its address itself. Otherwise any
    switch on the allow-list could name any host in a line with a hardware-error signature and
    have it drained. The inventory's addresses are loaded with `update` (and refreshed)."""

    def __init__(self, relays: Sequence[str]) -> None:
        self._relays = [ipaddress.ip_network(c.strip(), strict=False) for c in relays if c.strip()]
        self._by_address: dict[str, frozenset[str]] = {}

    def update(self, hosts: Iterable[tuple[str, str]]) -> None:
        """Replace the (hostname, address) pairs senders are matched against."""
        by_address: dict[str, set[str]] = {}
        for hostname, address in hosts:
            by_address.setdefault(address or hostname, set()).add(hostname)
        self._by_address = {a: frozenset(names) for a, names in by_address.items()}

    def allows(self, peer: str, host: str) -> bool:
        if host == peer or host in self._by_address.get(peer, ()):
            return True
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(ip in net for net in self._relays)


def _log_hook_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("syslog: recording a refusal failed: %s", done.exception())


def parse_allow_list(cidrs: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Networks allowed to send; an empty list means this host only (loopback)."""
    nets = []
    for cidr in (c.strip() for c in cidrs):
        if not cidr:
            continue
        try:
            nets.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as exc:
            raise ValueError(f"syslog allow-list: {cidr!r} is not an address or CIDR") from exc
    return nets or [ipaddress.ip_network(c) for c in LOOPBACK_ONLY]


def peer_address(peername: object) -> str:
    """The sender's IP as text; IPv4-mapped IPv6 (a dual-stack listener) shown as IPv4."""
    if not isinstance(peername, tuple) or not peername:
        return ""
    try:
        ip = ipaddress.ip_address(str(peername[0]).split("%", 1)[0])
    except ValueError:
        return str(peername[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class _Batch:
    """Records waiting to be submitted, and when the first of them arrived."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self.started = 0.0

    def add(self, record: LogRecord) -> None:
        if not self.records:
            self.started = time.monotonic()
        self.records.append(record)

    def take(self) -> list[LogRecord]:
        records, self.records = self.records, []
        return records


class SyslogServer:
    """Listen for syslog on TCP and/or UDP and hand parsed records to `sink` in batches.

    A batch is submitted when it reaches `batch_lines` or `batch_delay` seconds after its first
    line. TCP waits for the sink (so a full pipeline slows the senders down through TCP flow
    control); UDP cannot push back, so a full pipeline drops datagrams and counts them.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        host: str,
        tcp_port: int | None,
        udp_port: int | None,
        allow: list[str],
        max_frame: int = 65536,
        batch_lines: int = 1000,
        batch_delay: float = 0.2,
        source: str = "syslog",
        binding: SenderBinding | None = None,
        on_foreign: Callable[[str, str], None] | None = None,
    ) -> None:
        """`binding` limits the hosts each sender may name (None: any); `on_foreign(peer, host)`
        is called in a worker thread at most once a minute per sender that names another host."""
        if batch_lines < 1 or batch_delay <= 0:
            raise ValueError("batch_lines must be >= 1 and batch_delay > 0")
        SyslogFramer(max_frame)  # validates the limit now rather than on the first connection
        self._sink, self._host, self._source = sink, host, source
        self._ports = (tcp_port, udp_port)
        self._allow = parse_allow_list(allow)
        self._max_frame, self._batch_lines, self._batch_delay = max_frame, batch_lines, batch_delay
        self.stats = SyslogStats()
        self._tcp: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_batch = _Batch()
        self._udp_timer: asyncio.TimerHandle | None = None
        self._udp_tasks: set[asyncio.Task[None]] = set()
        self._rejected_at: dict[str, float] = {}
        self._foreign_at: dict[str, float] = {}
        self._binding, self._on_foreign = binding, on_foreign
        self._error_logged_at = 0.0

    @property
    def tcp_port(self) -> int | None:
        """The bound TCP port (the real one when 0 was asked for), None when not listening."""
        if self._tcp is None or not self._tcp.sockets:
            return None
        return int(self._tcp.sockets[0].getsockname()[1])

    @property
    def udp_port(self) -> int | None:
        """The bound UDP port, None when not listening."""
        if self._udp is None:
            return None
        return int(self._udp.get_extra_info("sockname")[1])

    async def start(self) -> None:
        """Bind the listeners; raises OSError when a port is taken."""
        tcp_port, udp_port = self._ports
        if tcp_port is not None:
            self._tcp = await asyncio.start_server(self._serve_tcp, self._host, tcp_port)
        if udp_port is not None:
            loop = asyncio.get_running_loop()
            try:
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self._host, udp_port)
                )
            except OSError:
                await self.stop()  # do not leave the TCP listener bound
                raise
        log.info(
            "syslog: listening on %s (tcp %s, udp %s)", self._host, self.tcp_port, self.udp_port
        )

    async def stop(self) -> None:
        """Close the listeners and connections, then submit what is pending."""
        if self._tcp is not None:
            self._tcp.close()
        for writer in self._connections.values():
            writer.close()  # the reader sees end of stream after what it already holds
        if self._udp is not None:
            self._udp.close()
        if self._udp_timer is not None:
            self._udp_timer.cancel()
        tasks = [*self._connections, *self._udp_tasks]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._udp_batch.records:
            await self._submit_udp(self._udp_batch.take())
        if self._tcp is not None:
            await self._tcp.wait_closed()

    # -- TCP --

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_address(writer.get_extra_info("peername"))
        if not self._allowed(peer, "tcp"):
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await self._read_connection(reader, peer)
        finally:
            del self._connections[task]
            writer.close()

    async def _read_connection(self, reader: asyncio.StreamReader, peer: str) -> None:
        framer, batch = SyslogFramer(self._max_frame), _Batch()
        while True:
            try:
                chunk = await self._read(reader, batch)
            except OSError:  # reset by the sender: keep what already arrived
                chunk = b""
            if chunk is None:
                await self._submit_tcp(batch.take())
                continue
            before = framer.oversize
            frames = framer.feed(chunk) if chunk else framer.flush()
            self.stats.oversize += framer.oversize - before
            now = datetime.now(UTC)
            for frame in frames:
                if (record := self._parse(frame, peer, now, "tcp")) is not None:
                    batch.add(record)
                if len(batch.records) >= self._batch_lines:
                    await self._submit_tcp(batch.take())
            if not chunk:
                await self._submit_tcp(batch.take())
                return

    async def _read(self, reader: asyncio.StreamReader, batch: _Batch) -> bytes | None:
        """The next chunk, or None when the pending batch is due before data arrives."""
        if not batch.records:
            return await reader.read(READ_SIZE)
        due = batch.started + self._batch_delay - time.monotonic()
        if due <= 0:
            return None
        try:
            return await asyncio.wait_for(reader.read(READ_SIZE), due)
        except TimeoutError:
            return None

    async def _submit_tcp(self, records: list[LogRecord]) -> None:
        """Wait until the sink takes `records`; meanwhile this connection is not read."""
        while records:
            try:
                await self._sink.submit(self._source, records, wait=True)
                return
            except Overloaded as exc:  # a sink that cannot wait: still push back, retry later
                await asyncio.sleep(min(max(exc.retry_after, 0.05), 5.0))
            except Exception:
                self._sink_failed(len(records))
                return

    # -- UDP --

    def _on_datagram(self, data: bytes, addr: object) -> None:
        peer = peer_address(addr)
        if not self._allowed(peer, "udp"):
            return
        if len(self._udp_batch.records) >= self._batch_lines:
            self.stats.received += 1  # batches already in flight: never queue without bound
            self.stats.dropped_udp += 1
            return
        size = len(data)
        if size > self._max_frame:
            self.stats.oversize += 1
            data = data[: self._max_frame]
        record = self._parse(data, peer, datetime.now(UTC), "udp")
        if record is None:
            return
        record.size = size
        self._udp_batch.add(record)
        if len(self._udp_batch.records) >= self._batch_lines:
            self._flush_udp()
        elif self._udp_timer is None:
            self._udp_timer = asyncio.get_running_loop().call_later(
                self._batch_delay, self._flush_udp
            )

    def _flush_udp(self) -> None:
        if self._udp_timer is not None:
            self._udp_timer.cancel()
            self._udp_timer = None
        if not self._udp_batch.records or len(self._udp_tasks) >= UDP_IN_FLIGHT:
            return  # flushed again when a batch in flight completes
        task = asyncio.get_running_loop().create_task(self._submit_udp(self._udp_batch.take()))
        self._udp_tasks.add(task)
        task.add_done_callback(self._udp_done)

    def _udp_done(self, task: asyncio.Task[None]) -> None:
        self._udp_tasks.discard(task)
        if self._udp is None or self._udp.is_closing() or not self._udp_batch.records:
            return
        due = self._udp_batch.started + self._batch_delay - time.monotonic()
        if len(self._udp_batch.records) >= self._batch_lines or due <= 0:
            self._flush_udp()
        elif self._udp_timer is None:
            self._udp_timer = asyncio.get_running_loop().call_later(due, self._flush_udp)

    async def _submit_udp(self, records: list[LogRecord]) -> None:
        try:
            await self._sink.submit(self._source, records, wait=False)
        except Overloaded:
            self.stats.dropped_udp += len(records)
        except Exception:
            self.stats.dropped_udp += len(records)
            self._sink_failed(len(records))

    # -- shared --

    def _parse(self, data: bytes, peer: str, now: datetime, transport: str) -> LogRecord | None:
        """The parsed record, or None for a line naming a host its sender may not speak for."""
        record, recognised = parse_message_checked(data, peer=peer, now=now, transport=transport)
        self.stats.received += 1
        if not recognised:
            self.stats.parse_fallbacks += 1
        if self._binding is None or self._binding.allows(peer, record.host):
            return record
        self.stats.foreign_lines += 1
        mono = time.monotonic()
        if mono - self._foreign_at.get(peer, -REJECT_LOG_INTERVAL_S) >= REJECT_LOG_INTERVAL_S:
            if len(self._foreign_at) >= 4096:
                self._foreign_at = {
                    p: t for p, t in self._foreign_at.items() if t > mono - REJECT_LOG_INTERVAL_S
                }
            self._foreign_at[peer] = mono
            log.warning(
                "syslog: refused lines from %s naming %s (a sender speaks only for the hosts "
                "at its address unless listed in syslog_relays)", peer, record.host[:253],
            )  # fmt: skip
            if self._on_foreign is not None:
                task = asyncio.get_running_loop().run_in_executor(
                    None, self._on_foreign, peer, record.host[:253]
                )
                task.add_done_callback(_log_hook_failure)
        return None

    def _allowed(self, peer: str, transport: str) -> bool:
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            ip = None
        if ip is not None and any(ip in net for net in self._allow):
            return True
        self.stats.rejected_peers += 1
        now = time.monotonic()
        if now - self._rejected_at.get(peer, -REJECT_LOG_INTERVAL_S) >= REJECT_LOG_INTERVAL_S:
            if len(self._rejected_at) >= 4096:  # a scan from many addresses: forget the old ones
                cutoff = now - REJECT_LOG_INTERVAL_S
                self._rejected_at = {p: t for p, t in self._rejected_at.items() if t > cutoff}
            self._rejected_at[peer] = now
            log.warning("syslog: refused %s from %s (not in the allow-list)", transport, peer)
        return False

    def _sink_failed(self, lines: int) -> None:
        """Count a sink error and log it at most once a minute; the listener keeps serving."""
        self.stats.sink_errors += 1
        now = time.monotonic()
        if now - self._error_logged_at >= REJECT_LOG_INTERVAL_S or not self._error_logged_at:
            self._error_logged_at = now
            log.exception("syslog: the ingest pipeline failed; %d lines lost", lines)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: SyslogServer) -> None:
        self._server = server

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._server._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("syslog: UDP socket error: %s", exc)
