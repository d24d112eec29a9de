"""Syslog message parsing: RFC 5424 and RFC 3164 (and their common variants) into `LogRecord`s.

Kept apart from the listener because it is pure: bytes and a clock in, a record out, never
raising. Whatever a device sends becomes a record (unrecognised text is kept whole), because a
log line dropped for being malformed is often the one that explains an outage.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta, timezone

from fleetops.logs.ingest.records import LogRecord

log = logging.getLogger(__name__)

FACILITIES = (
    *("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron"),
    *("authpriv", "ftp", "ntp", "audit", "alert", "clock"),
    *(f"local{i}" for i in range(8)),
)
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

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
