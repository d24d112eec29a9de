"""Syslog ingestion: RFC 5424 and RFC 3164 messages over TCP (RFC 6587 framing) and UDP.

Every router, switch, BMC and Linux host can already send syslog, so this listener is how most of
a fleet's logs arrive without installing anything. The parsers are pure and never raise: whatever
a device sends becomes a `LogRecord` (unrecognised text is kept whole), because a log line that
is dropped for being malformed is often the one that explains an outage. Memory is bounded
everywhere: frames are cut at `max_frame`, a TCP connection holds at most one batch and stops
being read while the sink is full, and UDP (which cannot push back) counts what it drops.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from fleetops.logs.ingest.records import LogRecord, Overloaded, Sink

log = logging.getLogger(__name__)

FACILITIES = (
    *("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron"),
    *("authpriv", "ftp", "ntp", "audit", "alert", "clock"),
    *(f"local{i}" for i in range(8)),
)
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
LOOPBACK_ONLY = ("127.0.0.0/8", "::1/128")

_PRI = re.compile(r"<(\d{1,3})>")
_HEADER_5424 = re.compile(r"(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+)(?: |$)")
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:?\d\d)?(?= |$)"
)
_BSD_TS = re.compile(
    r"([A-Za-z]{3}) +(\d{1,2}) (?:(\d{4}) )?(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?= |$)"
)
_MONTHS = {
    m: i for i, m in enumerate(("jan feb mar apr may jun jul aug sep oct nov dec").split(), 1)
}
# A 3164 TAG: "app:", "app[pid]:" or "app[pid]"; a hostname never looks like one.
_TAG = re.compile(r"([^\s\[\]:]{1,64})(?:\[([^\]\s]{0,64})\](:?)|(:))(?: |$)")
_SD_NAME = re.compile(r'[^\s=\]"\[]{1,64}')
_SD_VALUE = re.compile(r'((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')
_TRAILER = "\r\n\x00"


# --- parsing -------------------------------------------------------------------------------


def parse_message(
    data: bytes, *, peer: str, now: datetime, transport: str | None = None
) -> LogRecord:
    """Turn one syslog message into a record; never raises, whatever `data` holds.

    RFC 5424 and RFC 3164 (with the common variants: no PRI, an ISO timestamp, no HOSTNAME) are
    recognised; anything else keeps its whole text as the message. `now` resolves the year of
    BSD timestamps (which carry none) to the one nearest to it.
    """
    return parse_message_checked(data, peer=peer, now=now, transport=transport)[0]


def parse_message_checked(
    data: bytes, *, peer: str, now: datetime, transport: str | None = None
) -> tuple[LogRecord, bool]:
    """Like `parse_message`, also saying whether a syslog header was recognised."""
    try:
        text, invalid = data.decode("utf-8"), False
    except UnicodeDecodeError:
        text, invalid = data.decode("utf-8", errors="replace"), True
    labels = {"transport": transport, "peer": peer} if transport else {"peer": peer}
    record = LogRecord("", host=peer, labels=dict(labels), size=len(data), invalid_utf8=invalid)
    try:
        recognised = _parse_into(record, text, now)
    except Exception:  # a parser bug must not lose the line
        log.exception("syslog: parser failed; keeping the raw text")
        recognised = False
    if not recognised:
        record.message, record.ts, record.host = text.rstrip(_TRAILER), None, peer
        record.labels = labels
    return record, recognised


def _parse_into(record: LogRecord, text: str, now: datetime) -> bool:
    pri = _PRI.match(text)
    if pri and int(pri.group(1)) <= 191:
        facility, severity = divmod(int(pri.group(1)), 8)
        record.labels["facility"] = FACILITIES[facility]
        record.labels["severity"] = SEVERITIES[severity]
        rest = text[pri.end() :]
        header = _HEADER_5424.match(rest)
        if header and header.group(1) != "0" and _parse_5424(record, rest, header):
            return True
        _parse_3164(record, rest, now)
        return True  # a valid PRI is syslog, even when nothing after it is
    return _parse_3164(record, text, now)


def _parse_5424(record: LogRecord, rest: str, header: re.Match[str]) -> bool:
    stamp, host, app, procid, msgid = header.group(2, 3, 4, 5, 6)
    if stamp == "-":
        record.ts = None
    else:
        ts = _RFC3339.fullmatch(stamp)
        if ts is None:
            return False  # not a 5424 header after all ("<13>1 word ..." is a 3164 message)
        record.ts = _rfc3339(ts)
    if host != "-":
        record.host = host
    for key, value in (("app", app), ("procid", procid), ("msgid", msgid)):
        if value != "-":
            record.labels[key] = value
    pos = header.end()
    parsed = _parse_sd(rest, pos)
    if parsed is None:  # malformed structured data: keep it in the message rather than lose it
        message = rest[pos:]
    else:
        sd, pos = parsed
        record.labels.update(sd)
        message = rest[pos + 1 :] if rest.startswith(" ", pos) else rest[pos:]
    record.message = message.removeprefix("\ufeff").rstrip(_TRAILER)
    return True


def _parse_sd(text: str, pos: int) -> tuple[dict[str, str], int] | None:
    """Structured data at `pos` as `sd.<id>.<name>` labels and the index after it."""
    if text.startswith("-", pos):
        return {}, pos + 1
    out: dict[str, str] = {}
    if not text.startswith("[", pos):
        return None
    while text.startswith("[", pos):
        name = _SD_NAME.match(text, pos + 1)
        if name is None:
            return None
        sd_id, pos = name.group(), name.end()
        while text.startswith(" ", pos):
            name = _SD_NAME.match(text, pos + 1)
            if name is None or not text.startswith('="', name.end()):
                return None
            value = _SD_VALUE.match(text, name.end() + 2)
            if value is None:
                return None
            out[f"sd.{sd_id}.{name.group()}"] = _SD_ESCAPE.sub(r"\1", value.group(1))
            pos = value.end()
        if not text.startswith("]", pos):
            return None
        pos += 1
    return out, pos


def _parse_3164(record: LogRecord, rest: str, now: datetime) -> bool:
    """Fill `record` from a BSD-style message; False when it has no timestamp."""
    bsd = _BSD_TS.match(rest)
    iso = None if bsd else _RFC3339.match(rest)
    if bsd:
        record.ts = _bsd(bsd, now)
        rest = rest[bsd.end() :]
    elif iso:
        record.ts = _rfc3339(iso)
        rest = rest[iso.end() :]
    else:
        record.message = rest.rstrip(_TRAILER)
        return False
    rest = rest.lstrip(" ")
    token = rest.split(" ", 1)[0]
    if token and not _TAG.fullmatch(token + " "):  # `logger` to a local socket sends no HOSTNAME
        record.host = token
        rest = rest[len(token) + 1 :]
    tag = _TAG.match(rest)
    if tag:
        record.labels["app"] = tag.group(1)
        if tag.group(2):
            record.labels["procid"] = tag.group(2)
        rest = rest[tag.end() :]
    record.message = rest.rstrip(_TRAILER)
    return True


def _rfc3339(m: re.Match[str]) -> datetime | None:
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    zone = m.group(8)
    tz = UTC
    if zone and zone not in "Zz":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24):
            return None
        tz = timezone(sign * offset)
    try:
        ts = datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz)
        return ts.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _bsd(m: re.Match[str], now: datetime) -> datetime | None:
    month = _MONTHS.get(m.group(1).lower())
    if month is None:
        return None
    day, hour, minute, second = (int(g) for g in m.group(2, 4, 5, 6))
    micro = int((m.group(7) or "0").ljust(6, "0"))
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    years = [int(m.group(3))] if m.group(3) else [now.year - 1, now.year, now.year + 1]
    found: list[datetime] = []
    for year in years:
        try:
            found.append(datetime(year, month, day, hour, minute, min(second, 59), micro, UTC))
        except ValueError:  # Feb 29 outside leap years, day 31 of a short month...
            continue
    return min(found, key=lambda ts: abs(ts - now), default=None)


# --- TCP framing ---------------------------------------------------------------------------

_START, _COUNTED, _LINE, _SKIP_COUNTED, _SKIP_LINE = range(5)
_MAX_LEN_DIGITS = 10
_DIGITS = frozenset(b"0123456789")
_DELIMITER = re.compile(b"[\n\x00]")
_CR = 0x0D


class SyslogFramer:
    """Split a TCP byte stream into syslog frames (RFC 6587), holding at most `max_frame` bytes.

    Each frame is either octet-counted (`LEN SP MSG`, chosen when it starts with a non-zero
    digit run and a space) or ends at LF, CRLF or NUL. A frame longer than `max_frame` is cut
    there and the rest skipped up to the next boundary, so a broken or hostile sender cannot make
    the listener buffer without bound; `oversize` counts such frames. Empty lines are dropped.
    """

    def __init__(self, max_frame: int = 65536) -> None:
        if max_frame < 16:
            raise ValueError("max_frame must be at least 16 bytes")
        self.max_frame = max_frame
        self.oversize = 0
        self._buf = bytearray()
        self._mode = _START
        self._remaining = 0  # bytes left in the current octet-counted frame
        self._cr = False  # a line of exactly max_frame bytes then CR: is LF next?

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (never more than `max_frame`)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The frames completed by `chunk`, in order."""
        out: list[bytes] = []
        pos, end = 0, len(chunk)
        steps = {
            _START: self._start,
            _COUNTED: self._counted,
            _LINE: self._line,
            _SKIP_COUNTED: self._skip_counted,
            _SKIP_LINE: self._skip_line,
        }
        while pos < end:
            pos = steps[self._mode](chunk, pos, out)
        return out

    def flush(self) -> list[bytes]:
        """End of stream: the incomplete frame, if any (a sender may omit the last LF)."""
        frame = bytes(self._buf)
        if self._mode == _LINE and not self._cr:
            frame = frame.removesuffix(b"\r")
        keep = self._mode in (_START, _COUNTED, _LINE)
        self._buf.clear()
        self._mode, self._remaining, self._cr = _START, 0, False
        return [frame] if keep and frame else []

    def _start(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        end = len(chunk)
        if not self._buf:
            while pos < end and chunk[pos] in (0x0A, 0x00):  # stray trailers between frames
                pos += 1
        i = pos
        while i < end and chunk[i] in _DIGITS and len(self._buf) + i - pos < _MAX_LEN_DIGITS:
            i += 1
        self._buf += chunk[pos:i]
        if i == end:
            return end  # the length may continue in the next chunk
        if self._buf and self._buf[0] != 0x30 and chunk[i] == 0x20:
            self._mode, self._remaining = _COUNTED, int(self._buf)
            self._buf.clear()
            return i + 1
        self._mode = _LINE  # digits so far (if any) are the start of a line
        return i

    def _counted(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        take = min(self._remaining, len(chunk) - pos)
        keep = min(take, self.max_frame - len(self._buf))
        self._buf += chunk[pos : pos + keep]
        self._remaining -= take
        if self._remaining == 0 and keep == take:
            self._emit(out, _START)
        elif len(self._buf) == self.max_frame:
            self.oversize += 1
            self._emit(out, _SKIP_COUNTED if self._remaining else _START)
        return pos + take

    def _skip_counted(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        take = min(self._remaining, len(chunk) - pos)
        self._remaining -= take
        if self._remaining == 0:
            self._mode = _START
        return pos + take

    def _line(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        if self._cr:  # max_frame bytes then CR were held: only a trailer now keeps it in bounds
            self._cr = False
            if chunk[pos] in (0x0A, 0x00):
                self._emit(out, _START)
                return pos + 1
            self.oversize += 1
            self._emit(out, _SKIP_LINE)
            return pos
        found = _DELIMITER.search(chunk, pos)
        if found is not None:
            stop = found.start()
            total = len(self._buf) + stop - pos
            self._buf += chunk[pos : min(stop, pos + self.max_frame + 1 - len(self._buf))]
            if len(self._buf) == total and self._buf.endswith(b"\r"):
                del self._buf[-1]
                total -= 1
            if total > self.max_frame:
                self.oversize += 1
                del self._buf[self.max_frame :]
            self._emit(out, _START)
            return stop + 1
        end = len(chunk)
        total = len(self._buf) + end - pos
        if total <= self.max_frame:
            self._buf += chunk[pos:]
            return end
        if total == self.max_frame + 1 and chunk[end - 1] == _CR:
            self._buf += chunk[pos : end - 1]
            self._cr = True
            return end
        room = self.max_frame - len(self._buf)
        self._buf += chunk[pos : pos + room]
        self.oversize += 1
        self._emit(out, _SKIP_LINE)
        return pos + room

    def _skip_line(self, chunk: bytes, pos: int, out: list[bytes]) -> int:
        found = _DELIMITER.search(chunk, pos)
        if found is None:
            return len(chunk)
        self._mode = _START
        return found.end()

    def _emit(self, out: list[bytes], mode: int) -> None:
        if self._buf:
            out.append(bytes(self._buf))
            self._buf.clear()
        self._mode = mode


# --- the listener --------------------------------------------------------------------------

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
