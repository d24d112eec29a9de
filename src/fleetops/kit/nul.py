"""No NUL characters in API input: PostgreSQL cannot store or even compare text holding one.

A `\\u0000` in a JSON string or a `%00` in a query would otherwise reach the database and fail
there (a 500 on PostgreSQL, stored fine on SQLite: two behaviours for one input). The API refuses
it up front with a 422, and its OpenAPI document says so: every string schema without a pattern
of its own gets one that excludes NUL, so a generated client never sends what will be refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

NO_NUL_PATTERN = "^[^\\u0000]*$"
# Not blank, and no NUL: for fields that need some text (a reason, a selector).
TEXT_PATTERN = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
# One word: no whitespace, no NUL.
WORD_PATTERN = "^[^\\s\\u0000]+$"
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def document_no_nul(spec: dict[str, Any]) -> dict[str, Any]:
    """Give every string of the requests (parameters, bodies and the components they use) that
    has no pattern, enum or const of its own the NUL-free pattern."""
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    roots: list[Any] = []
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            roots += [p.get("schema") for p in operation.get("parameters", [])]
            roots += [
                c.get("schema")
                for c in operation.get("requestBody", {}).get("content", {}).values()
            ]
    seen: set[str] = set()
    while roots:
        schema = roots.pop()
        for ref in _refs(schema):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen and name in components:
                seen.add(name)
                roots.append(components[name])
        _add_pattern(schema)
    components[NUL_FREE_JSON] = _NUL_FREE_SCHEMA
    return spec


def _refs(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        found = [schema["$ref"]] if isinstance(schema.get("$ref"), str) else []
        return found + [r for value in schema.values() for r in _refs(value)]
    if isinstance(schema, list):
        return [r for item in schema for r in _refs(item)]
    return []


# Free-form JSON (a change's `params`, a tool's output) without NUL at any depth.
NUL_FREE_JSON = "NulFreeJson"
_NUL_FREE_REF = {"$ref": f"#/components/schemas/{NUL_FREE_JSON}"}
_NUL_FREE_SCHEMA: dict[str, Any] = {
    "description": "any JSON value whose strings and keys hold no NUL character",
    "pattern": NO_NUL_PATTERN,
    "propertyNames": {"pattern": NO_NUL_PATTERN},
    "additionalProperties": _NUL_FREE_REF,
    "items": _NUL_FREE_REF,
}


def _add_pattern(schema: Any) -> None:
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "string" and not {"pattern", "enum", "const"} & schema.keys():
            schema["pattern"] = NO_NUL_PATTERN
        if kind == "object" and "patternProperties" not in schema:
            names = schema.setdefault("propertyNames", {})
            if not {"pattern", "enum", "const"} & names.keys():
                names["pattern"] = NO_NUL_PATTERN
            if schema.get("additionalProperties", True) is True:  # free-form, or extras ignored
                schema["additionalProperties"] = _NUL_FREE_REF
        if kind == "array" and schema.get("items") in ({}, True):
            schema["items"] = _NUL_FREE_REF
        for value in schema.values():
            _add_pattern(value)
    elif isinstance(schema, list):
        for item in schema:
            _add_pattern(item)


class RefuseNul:
    """ASGI middleware: a 422 for a NUL in the path, the query or a JSON body under `prefix`,
    except the bodies of `raw` paths (log ingestion: a log line may hold anything).

    It reads a JSON body whole before the app does, so it also bounds it: a body longer than
    `limit` bytes (or the limit `limits` gives its path, with the setting to name) gets a 413
    as soon as it is (from its Content-Length, or while it arrives), before anyone,
    authenticated or not, makes the server hold it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str = "/api/",
        raw: frozenset[str] = frozenset(),
        limit: int = 32 * 1024 * 1024,
        limits: dict[str, tuple[int, str]] | None = None,
        setting: str = "api_max_json_bytes",
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.raw = raw
        self.limit = limit
        self.limits = limits or {}
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await _refuse(send, "the path or the query")
            return
        if scope["path"] in self.raw or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        limit, setting = self.limits.get(scope["path"], (self.limit, self.setting))
        if _declared_length(scope) > limit:
            await _too_large(send, limit, setting)
            return
        body, more = bytearray(), True
        messages: list[Message] = []
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if len(body) > limit:
                await _too_large(send, limit, setting)
                return
            more = message.get("type") == "http.request" and message.get("more_body", False)
        if _ESCAPED_NUL.search(body):
            await _refuse(send, "the JSON body")
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return bool(value.split(b";")[0].strip().lower() == b"application/json")
    return False


async def _refuse(send: Send, where: str) -> None:
    detail = f"{where} holds a NUL character (\\u0000), which no field accepts"
    await _answer(send, 422, {"error": "ValidationError", "detail": detail, "errors": []})


async def _too_large(send: Send, limit: int, setting: str) -> None:
    detail = f"the JSON body is longer than {limit} bytes ({setting}); send it in smaller parts"
    await _answer(send, 413, {"error": "PayloadTooLarge", "detail": detail})


async def _answer(send: Send, status: int, answer: dict[str, Any]) -> None:
    body = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
