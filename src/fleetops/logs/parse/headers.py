"""Split a raw log line into its header (time, level) and its message.

Applications prefix messages with a timestamp, a level and a logger name; templates should be mined
from the message alone, and the header's time is the event time when the sender gave none."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_LEVEL = r"(?:(?P<level>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL)\s+)?"
_HEADERS = [
    # 2026-11-26 17:02:03,123 [thread] INFO [x] org.Class: message
    re.compile(
        r"^(?P<iso>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,](?P<frac>\d+))?"
        r"(?:Z|[+-]\d{2}:?\d{2})?)\s+"
        r"(?:\[[^\]]*\]\s+)?" + _LEVEL + r"(?:\[[^\]]*\]\s+)?(?:[\w.$-]+:\s+)?"
    ),
    # Nov 26 17:02:03 host prog[pid]: message   (syslog files, kern.log)
    re.compile(
        r"^(?P<mon>[A-Z][a-z]{2})\s+(?P<day>\d{1,2})\s+(?P<hms>\d{2}:\d{2}:\d{2})\s+\S+\s+"
        r"[\w./()-]+(?:\[\d+\])?:\s+"
    ),
    # 081109 203518 143 INFO dfs.DataNode$DataXceiver: message   (HDFS)
    re.compile(r"^(?P<ymd>\d{6})\s+(?P<hms6>\d{6})\s+\d+\s+" + _LEVEL + r"[\w.$]+:\s+"),
    # 17/06/09 20:10:40 INFO executor.Executor: message   (Spark)
    re.compile(
        r"^(?P<dmy>\d{2}/\d{2}/\d{2})\s+(?P<hms>\d{2}:\d{2}:\d{2})\s+" + _LEVEL + r"[\w.$]+:\s+"
    ),
]


@dataclass(frozen=True, slots=True)
class Header:
    ts: datetime | None
    level: str | None
    message: str


def content(line: str) -> str:
    """The message part of a log line (known headers stripped; the line itself otherwise)."""
    for header in _HEADERS:
        if match := header.match(line):
            return line[match.end() :]
    return line


# The group that ends each header's time text, and the one holding its level (if it has one).
_TIME_END = [h.groupindex[g] for h, g in zip(_HEADERS, ("iso", "hms", "hms6", "hms"), strict=True)]
_LEVELS = [header.groupindex.get("level", 0) for header in _HEADERS]
_FRACTION = _HEADERS[0].groupindex["frac"]
_ISO, _SYSLOG, _HDFS, _SPARK = (header.match for header in _HEADERS)
# Lines of one second share their time text: parse it once (per header kind; bounded).
_TIMES: list[dict[str, datetime | None]] = [{} for _ in _HEADERS]
_FRACTIONS: dict[str, timedelta] = {}


def split_header(line: str, now: datetime | None = None) -> Header:
    """Header time (UTC; zone-less times are taken as UTC), level and message of `line`."""
    return Header(*split(line, now))


def split(line: str, now: datetime | None = None) -> tuple[datetime | None, str | None, str]:
    """`split_header` as a plain tuple (time, level, message), for the ingest hot path."""
    # The headers in order, each tried only where a character it must have is there.
    if line[4:5] == "-" and (match := _ISO(line)):
        return _split(0, match, line, now)
    if line[:1].isupper() and (match := _SYSLOG(line)):
        return _split(1, match, line, now)
    if line[6:7].isspace() and (match := _HDFS(line)):
        return _split(2, match, line, now)
    if line[2:3] == "/" and (match := _SPARK(line)):
        return _split(3, match, line, now)
    return None, None, line


def _split(
    kind: int, match: re.Match[str], line: str, now: datetime | None
) -> tuple[datetime | None, str | None, str]:
    times = _TIMES[kind]
    text = line[: match.end(_TIME_END[kind])]
    fraction = match.group(_FRACTION) if kind == 0 else None
    if fraction is not None and not fraction.isascii():
        fraction = None  # other digits: fromisoformat decides, uncached
    if fraction is not None:
        # Milliseconds differ line by line: cache the whole second, add the fraction.
        start = match.start(_FRACTION) - 1
        text = text[:start] + text[start + 1 + len(fraction) :]
    ts = times.get(text)
    if ts is None:
        if len(times) > 10_000:
            times.clear()
        groups = match.groupdict()
        if fraction is not None:
            groups["iso"] = text
        ts = times[text] = _time(groups, now)
    if ts is not None and fraction is not None:
        ts += _fraction(fraction)
    level = _LEVELS[kind]
    return ts, match.group(level) if level else None, line[match.end() :]


def _fraction(digits: str) -> timedelta:
    """A second's fraction as fromisoformat reads it (digits beyond six are dropped)."""
    delta = _FRACTIONS.get(digits)
    if delta is None:
        if len(_FRACTIONS) > 10_000:
            _FRACTIONS.clear()
        delta = _FRACTIONS[digits] = timedelta(microseconds=int(digits[:6].ljust(6, "0")))
    return delta


def _time(g: dict[str, str | None], now: datetime | None) -> datetime | None:
    try:
        if iso := g.get("iso"):
            ts = datetime.fromisoformat(iso.replace(",", "."))
            return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        if (mon := g.get("mon")) and (day := g.get("day")) and (hms := g.get("hms")):
            return _yearless(_MONTHS[mon], int(day), hms, now or datetime.now(UTC))
        if (ymd := g.get("ymd")) and (hms6 := g.get("hms6")):
            return datetime.strptime(ymd + hms6, "%y%m%d%H%M%S").replace(tzinfo=UTC)
        if (dmy := g.get("dmy")) and (hms := g.get("hms")):
            return datetime.strptime(f"{dmy} {hms}", "%y/%m/%d %H:%M:%S").replace(tzinfo=UTC)
    except (ValueError, KeyError):
        return None
    return None


def _yearless(month: int, day: int, hms: str, now: datetime) -> datetime | None:
    """A syslog time has no year: take the year that puts it nearest to now."""
    h, m, s = (int(x) for x in hms.split(":"))
    best: datetime | None = None
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            candidate = datetime(year, month, day, h, m, s, tzinfo=UTC)
        except ValueError:  # Feb 29 in a common year
            continue
        if best is None or abs(candidate - now) < abs(best - now):
            best = candidate
    return best


__all__ = ["Header", "content", "split", "split_header"]
