"""Split a raw log line into its header (time, level) and its message.

Applications prefix messages with a timestamp, a level and a logger name; templates should be mined
from the message alone, and the header's time is the event time when the sender gave none."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_LEVEL = r"(?:(?P<level>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL)\s+)?"
_HEADERS = [
    # 2026-11-26 17:02:03,123 [thread] INFO [x] org.Class: message
    re.compile(
        r"^(?P<iso>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+"
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


_TIMES: dict[tuple[str | None, ...], datetime | None] = {}


def split_header(line: str, now: datetime | None = None) -> Header:
    """Header time (UTC; zone-less times are taken as UTC), level and message of `line`."""
    for header in _HEADERS:
        if match := header.match(line):
            groups = match.groupdict()
            # Lines of one second share their time text: parse it once.
            key = (groups.get("iso"), groups.get("mon"), groups.get("day"), groups.get("hms"),
                   groups.get("ymd"), groups.get("hms6"), groups.get("dmy"))  # fmt: skip
            ts = _TIMES.get(key)
            if ts is None:
                if len(_TIMES) > 10_000:
                    _TIMES.clear()
                ts = _TIMES[key] = _time(groups, now)
            return Header(ts, groups.get("level"), line[match.end() :])
    return Header(None, None, line)


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


__all__ = ["Header", "content", "split_header"]
