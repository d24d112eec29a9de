"""Who an ingest token speaks for, and how much it may send: the credential and the body limit
of every push endpoint (log lines, metrics).

A shipper or a pusher holds an ingest token, which can send data and nothing else; a user's API
token (which may approve changes) is refused there with 403, so that it never ends up in a
shipper's configuration. Answers are cached for a few seconds per token, cleared on revocation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials

from fleetops.auth.dependencies import optional_principal, record_refusal
from fleetops.errors import NotAuthenticated, PayloadTooLarge, PermissionDenied
from fleetops.kit.digest import sha256
from fleetops.logs import service
from fleetops.logs.service import IngestSource

TOKEN_CACHE_SECONDS = 10.0


def _token_cache(request: Request) -> dict[str, tuple[IngestSource | None, float]]:
    cache: dict[str, tuple[IngestSource | None, float]] | None = getattr(
        request.app.state, "ingest_tokens", None
    )
    if cache is None:
        cache = request.app.state.ingest_tokens = {}
    return cache


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            _user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or None
    return None


async def ingest_source(request: Request, what: str) -> IngestSource:
    """The ingest token's source; 401 without a valid one, 403 for a user's API token. `what`
    the endpoint does, for the message ("send logs")."""
    raw = _credential(request)
    if raw and raw.startswith(service.INGEST_PREFIX):
        cache = _token_cache(request)
        key = sha256(raw)
        hit = cache.get(key)
        if hit is None or hit[1] < time.monotonic():
            name = await asyncio.to_thread(_resolve, request, raw)
            if len(cache) > 10_000:
                cache.clear()
            hit = cache[key] = (name, time.monotonic() + TOKEN_CACHE_SECONDS)
        if hit[0] is not None:
            return hit[0]
    elif raw:
        creds = HTTPAuthorizationCredentials(scheme="Bearer", credentials=raw)
        principal = await asyncio.to_thread(optional_principal, request, creds)
        if principal is not None:
            await asyncio.to_thread(record_refusal, request, principal, "forbidden")
            raise PermissionDenied(
                f"user API tokens cannot {what}; create an ingest token with "
                "`fleetops logs token create NAME` and configure the sender with it"
            )
    await asyncio.to_thread(record_refusal, request, None, "unauthenticated")
    raise NotAuthenticated(
        "send an ingest token as 'Authorization: Bearer <token>' (or as the Basic-auth password); "
        "create one with `fleetops logs token create NAME`"
    )


def _resolve(request: Request, raw: str) -> IngestSource | None:
    with request.app.state.read_sessions() as session:
        return service.resolve_ingest_token(session, raw)


def forget_ingest_tokens(request: Request) -> None:
    """Drop the cached answers (a token was revoked: it must stop working now)."""
    _token_cache(request).clear()


async def read_body(request: Request, limit: int, setting: str) -> bytes:
    """The body as sent, refused (413) as soon as it is longer than `limit`: from its
    Content-Length, or while it arrives, so a pusher never makes the server hold more."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the body is {declared} bytes; the limit is {limit} ({setting}): send smaller batches"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the body exceeds {limit} bytes ({setting}): send smaller batches"
            )
        chunks.append(chunk)
    return b"".join(chunks)
