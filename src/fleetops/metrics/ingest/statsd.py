"""StatsD lines, with DogStatsD tags, as points.

`NAME:VALUE|TYPE[|@RATE][|#TAG:VALUE,TAG2:VALUE]`, one per line. `c` is a count (divided by
its sample rate, as StatsD does); `g` a gauge; `ms`, `h` and `d` (timers, histograms,
distributions) are stored as gauges, so a window holds their mean. Sets (`s`) and gauge deltas
(`+5|g`) need state between pushes that a window does not keep: refused, with the line. A
negative gauge is a value, as in DogStatsD (Etsy's StatsD would read a delta). A tag without
a value (`#canary`) is a label with an empty value.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from pydantic import ValidationError

from fleetops.errors import AppError
from fleetops.metrics.schemas import MAX_POINTS, MetricPoint, StatsdLineError

NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:]{0,127}$")
KINDS = {"c": "count", "g": "gauge", "ms": "gauge", "h": "gauge", "d": "gauge"}
SHOWN_ERRORS = 20


class StatsdLinesRefused(AppError):
    """At least one line is bad: nothing of the body is stored."""

    status_code = 422


class TooManyLines(AppError):
    status_code = 413


class _LineError(ValueError):
    pass


def parse(text: str, *, now: datetime) -> list[MetricPoint]:
    """Every line's point, all stamped `now`; refused whole, naming each bad line."""
    points: list[MetricPoint] = []
    errors: list[StatsdLineError] = []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        if len(points) + len(errors) >= MAX_POINTS:
            raise TooManyLines(f"more than {MAX_POINTS} lines: send smaller batches")
        try:
            points.append(parse_line(line, now=now))
        except _LineError as exc:
            errors.append(StatsdLineError(line=number, detail=str(exc)))
    if errors:
        shown = "; ".join(f"line {e.line}: {e.detail}" for e in errors[:SHOWN_ERRORS])
        more = f" (and {len(errors) - SHOWN_ERRORS} more)" if len(errors) > SHOWN_ERRORS else ""
        raise StatsdLinesRefused(
            f"{len(errors)} bad line(s), nothing stored: {shown}{more}",
            extra={"errors": [e.model_dump() for e in errors[:SHOWN_ERRORS]]},
        )
    if not points:
        raise StatsdLinesRefused("no StatsD lines in the body", extra={"errors": []})
    return points


def parse_line(line: str, *, now: datetime) -> MetricPoint:
    """One line's point; `_LineError` says what is wrong with it."""
    if "\x00" in line:
        raise _LineError("a NUL character, which no name or tag may hold")
    name, colon, rest = line.partition(":")
    if not colon:
        raise _LineError("expected NAME:VALUE|TYPE")
    if not NAME.match(name):
        raise _LineError(
            f"name {name[:140]!r}: a letter or _, then letters, digits, _, . or :; "
            "at most 128 characters"
        )
    value_text, *sections = rest.split("|")
    if not sections:
        raise _LineError("no |TYPE after the value (c, g, ms, h or d)")
    kind = KINDS.get(sections[0])
    if kind is None:
        raise _LineError(_unknown_type(sections[0]))
    value = _value(value_text, sections[0])
    rate, labels = _options(sections[1:])
    if kind == "count":
        value /= rate
    try:
        return MetricPoint(name=name, value=value, time=now, kind=kind, labels=labels)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise _LineError(f"{where}: {first['msg']}") from None


def _unknown_type(kind: str) -> str:
    if kind == "s":
        return "sets (|s) are not supported: count distinct values before sending"
    return f"type {kind[:20]!r} is not one of c, g, ms, h, d"


def _value(text: str, kind: str) -> float:
    if kind == "g" and text.startswith("+"):
        raise _LineError("gauge deltas (+N|g) are not supported: send the gauge's value")
    try:
        value = float(text)
    except ValueError:
        raise _LineError(f"value {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise _LineError("the value must be a finite number")
    if kind == "c" and value < 0:
        raise _LineError("a count cannot be negative")
    return value


def _options(sections: list[str]) -> tuple[float, dict[str, str]]:
    """The sample rate (`@0.1`) and the tags (`#k:v,k2`) of a line."""
    rate, labels = 1.0, {}
    for section in sections:
        if section.startswith("@"):
            try:
                rate = float(section[1:])
            except ValueError:
                rate = math.nan
            if not 0 < rate <= 1:
                raise _LineError(f"sample rate {section[:20]!r}: a number in (0, 1]")
        elif section.startswith("#"):
            for tag in filter(None, section[1:].split(",")):
                key, _, value = tag.partition(":")
                if key in labels:
                    raise _LineError(f"tag {key[:64]!r} given twice")
                labels[key] = value
        else:
            raise _LineError(f"unknown section {section[:20]!r}: only |@RATE and |#TAGS follow")
    return rate, labels
