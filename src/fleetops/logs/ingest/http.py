"""Decode HTTP log payloads: native/Fluent Bit/Vector JSON (lines or arrays) and Loki's JSON push.

Shippers differ only in field names, so one decoder takes them all: the message is `message`,
`log`, `msg` or `MESSAGE`; the host is `host`, `hostname` or `_HOSTNAME`; the time is `timestamp`,
`date`, `time`, `ts` or `@timestamp` (RFC 3339 text or epoch seconds/ms/µs/ns). Everything else is
kept as labels. Syntax errors reject the whole payload with the line that broke it, so a sender can
fix and resend without anything half-stored.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from fleetops.logs.ingest.records import LogRecord

MESSAGE_FIELDS = ("message", "log", "msg", "MESSAGE", "_msg")
HOST_FIELDS = ("host", "hostname", "_HOSTNAME", "HOSTNAME")
TIME_FIELDS = ("timestamp", "date", "time", "ts", "@timestamp")
_LOKI_HOST = ("host", "hostname", "instance", "node")
MAX_LABELS = 32
MAX_LABEL_KEY = 64
MAX_LABEL_VALUE = 256
_NOT_LABELS = frozenset((*MESSAGE_FIELDS, *HOST_FIELDS, *TIME_FIELDS, "file", "offset"))


class PayloadError(Exception):
    """A payload fleetops cannot take; `status` is the HTTP answer (400, 413 or 415)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def decompress(body: bytes, encoding: str | None, *, max_bytes: int) -> bytes:
    """Undo Content-Encoding, refusing to inflate beyond `max_bytes` (a zip bomb stays small)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        if len(body) > max_bytes:
            raise PayloadError(f"body is {len(body)} bytes; the limit is {max_bytes}", 413)
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        try:
            data = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            raise PayloadError(f"body is not valid {encoding}: {exc}") from None
        if len(data) > max_bytes or inflater.unconsumed_tail:
            raise PayloadError(f"decompressed body exceeds the limit of {max_bytes} bytes", 413)
        if not inflater.eof:
            raise PayloadError(f"{encoding} body is truncated")
        return data
    raise PayloadError(
        f"unsupported Content-Encoding {encoding!r}; send identity, gzip or deflate", 415
    )


def parse_json_records(data: bytes, *, peer: str) -> list[LogRecord]:
    """Records from a JSON array of objects, one object, or JSON lines (one object per line)."""
    text, replaced = _text(data)
    stripped = text.lstrip()
    if not stripped:
        return []
    if stripped[0] == "[":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _syntax(exc) from None
        shared: _Shared = {}
        return [_record(item, n, peer, replaced, shared) for n, item in enumerate(items, 1)]
    records = []
    shared = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            continue
        try:
            item = _loads(line)
        except json.JSONDecodeError as exc:
            raise _syntax(exc, number) from None
        if isinstance(item, list):
            records += [_record(i, number, peer, replaced, shared) for i in item]
        else:
            records.append(_record(item, number, peer, replaced, shared))
    return records


# Records of one payload that carry the same labels (lines of one file) share one dict: less
# memory while they wait to be stored, and their JSON can be written once. Labels are read-only
# once decoded.
_Shared = dict[tuple[tuple[str, str], ...], dict[str, str]]


_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(line: str) -> Any:
    """`json.loads` of one line, calling the C scanner directly when the line is one bare value."""
    try:
        item, end = _scan(line, 0)
    except (StopIteration, ValueError):
        return json.loads(line)  # raises the error json.loads gives
    return item if end == len(line) else json.loads(line)


def parse_loki_push(data: bytes, *, peer: str) -> list[LogRecord]:
    """Records from Loki's JSON push body.

    Shape: {"streams": [{"stream": {labels}, "values": [["<unix ns>", "line", {metadata}?]]}]}."""
    text, replaced = _text(data)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _syntax(exc) from None
    streams = body.get("streams") if isinstance(body, dict) else None
    if not isinstance(streams, list):
        raise PayloadError('a Loki push body is {"streams": [...]}; "streams" is missing')
    records = []
    for s, stream in enumerate(streams, 1):
        if not isinstance(stream, dict) or not isinstance(stream.get("values"), list):
            raise PayloadError(f'stream {s}: expected {{"stream": {{...}}, "values": [...]}}')
        labels = _labels(stream.get("stream") or {}, skip=())
        host = next(
            (labels[k] for k in ("host", "hostname", "instance", "node") if k in labels), peer
        )
        for v, value in enumerate(stream["values"], 1):
            if not (isinstance(value, list) and len(value) in (2, 3)):
                raise PayloadError(f'stream {s} value {v}: expected ["<unix ns>", "<line>"]')
            ns, line = value[0], value[1]
            if not isinstance(line, str):
                raise PayloadError(f"stream {s} value {v}: the line must be a string")
            try:
                ts = datetime.fromtimestamp(int(ns) / 1e9, UTC)
            except (TypeError, ValueError, OverflowError, OSError):
                raise PayloadError(
                    f"stream {s} value {v}: timestamp {ns!r} is not a Unix epoch in nanoseconds"
                ) from None
            extra = (
                _labels(value[2], skip=()) if len(value) == 3 and isinstance(value[2], dict) else {}
            )
            records.append(
                LogRecord(
                    message=line,
                    host=host,
                    ts=ts,
                    labels={**labels, **extra},
                    invalid_utf8=replaced and "\ufffd" in line,
                )
            )
    return records


def _syntax(exc: json.JSONDecodeError, line: int | None = None) -> PayloadError:
    where = f"line {line} column {exc.colno}" if line else f"line {exc.lineno} column {exc.colno}"
    return PayloadError(f"invalid JSON at {where}: {exc.msg}")


def _text(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


def _record(item: Any, where: int, peer: str, replaced: bool, shared: _Shared) -> LogRecord:
    if not isinstance(item, dict):
        raise PayloadError(f"record {where}: expected a JSON object, got {type(item).__name__}")
    # The first field present wins; the usual names are tried before the loop.
    message = item["message"] if "message" in item else _first(item, MESSAGE_FIELDS)
    if message is None:
        raise PayloadError(
            f"record {where}: no message field (expected one of {', '.join(MESSAGE_FIELDS)})"
        )
    if not isinstance(message, str):
        message = json.dumps(message, separators=(",", ":"))
    message = message.rstrip("\n")
    host = item.get("host")
    if not isinstance(host, str):
        host = next((item[k] for k in HOST_FIELDS if isinstance(item.get(k), str)), "")
    host = host or peer
    raw_ts = item["timestamp"] if "timestamp" in item else _first(item, TIME_FIELDS)
    labels = _labels(item, skip=_NOT_LABELS)
    ts = None
    if raw_ts is not None:
        ts = parse_time(raw_ts)
        if ts is None:
            labels["timestamp_invalid"] = str(raw_ts)[:MAX_LABEL_VALUE]
    labels = shared.setdefault(tuple(labels.items()), labels)
    file, offset = item.get("file"), item.get("offset")
    if file is not None and not isinstance(file, str):
        raise PayloadError(f"record {where}: file must be a string")
    if offset is not None and (
        isinstance(offset, bool) or not isinstance(offset, int) or offset < 0
    ):
        raise PayloadError(f"record {where}: offset must be a non-negative integer")
    return LogRecord(
        message=message,
        host=host[:255],
        ts=ts,
        labels=labels,
        file=file[:512] if file is not None else None,
        offset=offset if file is not None else None,
        invalid_utf8=replaced and "\ufffd" in message,
    )


def _first(item: dict[str, Any], fields: tuple[str, ...]) -> Any:
    for key in fields:
        if key in item:
            return item[key]
    return None


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 text or a Unix epoch in s, ms, µs or ns (told apart by magnitude)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        for scale in (1e9, 1e6, 1e3):
            if abs(seconds) > scale * 1e8:  # later than 1973 in that unit
                seconds /= scale
                break
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip().replace("z", "Z")
        if text.isdigit():
            return parse_time(int(text))
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            return None
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return None


def _labels(
    item: dict[str, Any], *, skip: Collection[str] = (), prefix: str = ""
) -> dict[str, str]:
    """Extra fields as flat string labels (nested keys joined by dots), bounded."""
    out: dict[str, str] = {}
    for key, value in item.items():
        if not prefix and key in skip:
            continue
        name = key if not prefix and len(key) <= MAX_LABEL_KEY else f"{prefix}{key}"[:MAX_LABEL_KEY]
        if isinstance(value, dict):
            for k, v in _labels(value, prefix=f"{name}.").items():
                if len(out) < MAX_LABELS:
                    out[k] = v
            continue
        if len(out) >= MAX_LABELS:
            break
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        out[name] = text[:MAX_LABEL_VALUE]
    return out
