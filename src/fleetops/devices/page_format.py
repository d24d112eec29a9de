"""How the device and repair pages write durations, shares, reasons and SLA standing.

Kept apart from the routes because these are pure functions of a value (and a clock), handed to
the templates as helpers, so they read the same on every device page and are easy to test alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fleetops.devices.enums import TicketStatus
from fleetops.models import RepairTicket

REASON_CHARS = 80


def span(delta: timedelta) -> str:
    """A duration as an operator reads it: '45 min', '3.5 h', '2.1 d'."""
    minutes = abs(delta.total_seconds()) / 60
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def hours(value: float | None) -> str:
    return "—" if value is None else span(timedelta(hours=value))


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0%}" if value >= 0.01 or value == 0 else "<1%"


def shorten(text: str, limit: int = REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Sla:
    """A ticket's standing against its SLA: the words and the badge colour."""

    text: str
    tone: str


def sla(ticket: RepairTicket, now: datetime) -> Sla:
    """Due in / overdue by for a live ticket; met or missed for a closed one."""
    if TicketStatus(ticket.status).closed:
        closed = ticket.closed_at or now
        if closed <= ticket.sla_due:
            return Sla("met", "ok")
        return Sla(f"missed by {span(closed - ticket.sla_due)}", "warn")
    left = ticket.sla_due - now
    if left < timedelta(0):
        return Sla(f"overdue by {span(left)}", "bad")
    quarter = (ticket.sla_due - ticket.opened_at) / 4
    return Sla(f"due in {span(left)}", "warn" if left < quarter else "ok")


TICKET_TONES = {
    "open": "warn",
    "diagnosing": "info",
    "waiting_parts": "warn",
    "repaired": "info",
    "verified": "ok",
    "failed": "bad",
}
HELPERS = {"span": span, "hours": hours, "percent": percent, "shorten": shorten}


def ticket_tone(status: str) -> str:
    return TICKET_TONES.get(status, "muted")
