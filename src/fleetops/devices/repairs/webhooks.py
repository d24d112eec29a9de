"""Ticket webhooks: POST each committed ticket event to the configured URL, signed, until taken.

Events are queued as `webhook_deliveries` rows in the transaction that changed the ticket (see
`devices.repairs.service`), so nothing is announced that did not commit and nothing committed is
lost to a crash. The deliverer sends them oldest first, one ticket's events in order (a later event
waits while an earlier one of the same ticket is retried), and retries failures with exponential
backoff up to `MAX_ATTEMPTS`.

The receiver checks `X-Fleetops-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body with the
shared secret (GitHub's scheme); `X-Fleetops-Delivery` is the delivery id, the same on every retry,
so a receiver can drop duplicates (delivery is at least once).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleetops.db import session_scope
from fleetops.models import WebhookDelivery, utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12  # with the backoff below: about 10 hours of trying
BATCH = 50


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """Constant-time check of a signature header, for receivers (and tests)."""
    return hmac.compare_digest(sign(secret, body), header)


def backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds after each failed attempt, at most an hour."""
    return timedelta(seconds=min(2**attempts, 3600))


@dataclass(frozen=True)
class Sent:
    delivered: int
    failed: int
    gave_up: int


class Deliverer:
    """Send due deliveries; `run_once` is one round, `run_forever` rounds until cancelled."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        url: str,
        secret: str,
        *,
        interval: float = 1.0,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.url = url
        self.secret = secret.encode()
        self.interval = interval
        self.timeout = timeout
        self.clock = clock

    def _due(self) -> list[tuple[int, str, bytes]]:
        """Due deliveries, oldest first, at most one per ticket (its oldest pending)."""
        with session_scope(self.sessions) as session:
            rows = session.scalars(
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.delivered_at.is_(None),
                    WebhookDelivery.gave_up_at.is_(None),
                )
                .order_by(WebhookDelivery.id)
                .limit(BATCH * 4)
            ).all()
            now = self.clock()
            seen: set[int | None] = set()
            due: list[tuple[int, str, bytes]] = []
            for row in rows:
                key = row.ticket_id
                if key in seen and key is not None:
                    continue  # an earlier event of this ticket is still pending
                seen.add(key)
                if row.next_attempt_at <= now:
                    body = json.dumps(row.payload, sort_keys=True, separators=(",", ":"))
                    due.append((row.id, row.event, body.encode()))
            return due[:BATCH]

    def _record(self, delivery_id: int, error: str | None) -> str:
        with session_scope(self.sessions) as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return "gone"
            now = self.clock()
            row.attempts += 1
            if error is None:
                row.delivered_at, row.last_error = now, ""
                return "delivered"
            row.last_error = error[:2000]
            if row.attempts >= MAX_ATTEMPTS:
                row.gave_up_at = now
                return "gave_up"
            row.next_attempt_at = now + backoff(row.attempts)
            return "failed"

    async def run_once(self) -> Sent:
        due = await asyncio.to_thread(self._due)
        counts = {"delivered": 0, "failed": 0, "gave_up": 0, "gone": 0}
        if not due:
            return Sent(0, 0, 0)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for delivery_id, event, body in due:
                error = await self._post(client, delivery_id, event, body)
                outcome = await asyncio.to_thread(self._record, delivery_id, error)
                counts[outcome] += 1
                if error is not None:
                    log.warning("webhook delivery %d (%s) failed: %s", delivery_id, event, error)
        return Sent(counts["delivered"], counts["failed"], counts["gave_up"])

    async def _post(
        self, client: httpx.AsyncClient, delivery_id: int, event: str, body: bytes
    ) -> str | None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "fleetops-webhook",
            "X-Fleetops-Event": event,
            "X-Fleetops-Delivery": str(delivery_id),
            "X-Fleetops-Signature": sign(self.secret, body),
        }
        try:
            response = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.is_success:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("webhook round failed")
            await asyncio.sleep(self.interval)
