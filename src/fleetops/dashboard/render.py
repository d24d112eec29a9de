"""Template rendering shared by every domain's pages: Jinja filters, CSRF tokens, HTML errors.

Pages are server-rendered and must read without JavaScript, and the Content-Security-Policy forbids
inline scripts: templates only link to static files, and everything dynamic happens here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.auth.dependencies import (
    SESSION_COOKIE,
    Principal,
    audit_context,
    optional_principal,
)
from fleetops.auth.roles import Role
from fleetops.db import session_scope
from fleetops.devices.enums import Lifecycle
from fleetops.errors import AppError, BadRequest, NotAuthenticated, PermissionDenied
from fleetops.inventory.document import HOST_STATES

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

CSRF_FIELD = "csrf"
_STATE_CLASSES: dict[str, str] = {
    Lifecycle.IN_SERVICE: "ok",
    Lifecycle.PROVISIONING: "info",
    Lifecycle.VERIFYING: "info",
    Lifecycle.SUSPECT: "warn",
    Lifecycle.DRAINING: "warn",
    Lifecycle.ISOLATED: "bad",
    Lifecycle.IN_REPAIR: "bad",
    Lifecycle.RETIRED: "muted",
}
_GOOD_OUTCOMES = frozenset({"ok", "success"})


class CsrfRejected(PermissionDenied):
    """A form came back without the token we issued: stale page or a cross-site forgery."""


def wants_html(request: Request) -> bool:
    """Pages get HTML errors; the API (and anything asking for JSON) gets JSON."""
    if request.url.path.startswith(("/api/", "/openapi", "/loki/")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "json" not in accept


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render a template; `request` is available to it (for CSRF tokens and the active nav)."""
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def render_error_page(request: Request, status: int, body: dict[str, Any]) -> Response:
    """Show an error as a page; an anonymous visitor is sent to log in and brought back."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = f"/login?next={quote(target, safe='/')}"
        if request.headers.get("hx-request"):
            # An htmx swap would put the login form inside the page; make htmx navigate instead.
            return Response(status_code=401, headers={"HX-Redirect": login})
        return RedirectResponse(login, status_code=303)
    context = {"status": status, "error": body, "principal": _principal_or_none(request)}
    return render(request, "error.html", context, status_code=status)


def _principal_or_none(request: Request) -> Principal | None:
    """Who sees an error page, to keep the navigation; None if the database is the error."""
    try:
        return optional_principal(request, None)  # pages identify users by cookie
    except SQLAlchemyError:
        return None


# --- CSRF -------------------------------------------------------------------------------------


def sign(request: Request, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` under the server's secret key, separated by purpose."""
    key = request.app.state.settings.secret_key.encode()
    return hmac.new(key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The hidden-field value for forms of a logged-in user: bound to their session cookie."""
    session = request.cookies.get(SESSION_COOKIE)
    return sign(request, "session-csrf", session) if session else ""


def tokens_match(expected: str, submitted: str) -> bool:
    """Compare in constant time; bytes, because compare_digest refuses non-ASCII str."""
    return bool(expected) and hmac.compare_digest(expected.encode(), submitted.encode())


def check_csrf(request: Request, submitted: str) -> None:
    """Refuse a form whose token does not match this browser's session (403)."""
    if not tokens_match(csrf_token(request), submitted):
        raise CsrfRejected(
            "CSRF check failed: this form is stale or was not sent from a fleetops page. "
            "Reload the page and submit it again."
        )


# --- filters and globals ------------------------------------------------------------------------


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """Say how long ago `moment` was, coarsely ('3 min ago'), as operators scan, not compute."""
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = f"{seconds // size} {unit}"
            break
    else:
        if seconds < 5:
            return "just now"
        amount = f"{seconds} s"
    return f"in {amount}" if future else f"{amount} ago"


def when(moment: datetime | None) -> Markup:
    """A <time> element: relative text, exact UTC on hover, machine-readable attribute."""
    if moment is None:
        return Markup('<span class="muted">never</span>')
    exact = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(), exact, ago(moment)
    )


def utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def pager(total: int, limit: int, offset: int) -> dict[str, int | None]:
    """Where a list page is (first and last row shown) and the offsets of its neighbouring
    pages (None at either end), for the `pager` macro."""
    return {
        "first": offset + 1 if total else 0,
        "last": min(offset + limit, total),
        "prev": max(offset - limit, 0) if offset > 0 else None,
        "next": offset + limit if offset + limit < total else None,
    }


def state_class(state: str) -> str:
    """The badge colour of a host state: ok, info, warn, bad or muted."""
    return _STATE_CLASSES.get(state, "muted")


def state_items(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Counts in lifecycle order (in service first), so bars and lists read the same everywhere."""
    rank = {state: i for i, state in enumerate(HOST_STATES)}
    return sorted(counts.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def outcome_class(outcome: str) -> str:
    return "ok" if outcome in _GOOD_OUTCOMES else "bad"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def url(path: str, params: Mapping[str, Any] | None = None, **changes: Any) -> str:
    """`path?query` from `params` updated with `changes`; empty values are dropped."""
    merged = {**(params or {}), **changes}
    query = urlencode({k: v for k, v in merged.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


templates.env.filters.update(
    ago=ago,
    when=when,
    utc=utc,
    state_class=state_class,
    state_items=state_items,
    outcome_class=outcome_class,
    pretty_json=pretty_json,
)
templates.env.globals.update(url=url, csrf_token=csrf_token, CSRF_FIELD=CSRF_FIELD)


# --- pages ------------------------------------------------------------------------------------


def page_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """Any logged-in user may read every page; anyone else is sent to the login form.

    Not audited as a refusal: a browser opening a bookmark before logging in is routine.
    """
    if principal is None:
        raise NotAuthenticated("log in to see this page")
    return principal


PageUser = Annotated[Principal, Depends(page_principal)]


def page(
    request: Request, name: str, who: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render(request, name, {"principal": who, **context}, status_code=status_code)


# --- auto-refresh -------------------------------------------------------------------------------

# How often a page with time charts fetches them again (`?refresh=`): in the URL, so a shared
# link or a reload keeps it. `static/refresh.js` changes it in place (history.replaceState).
REFRESH: dict[str, int] = {"off": 0, "5s": 5, "10s": 10, "30s": 30, "1m": 60, "5m": 300}


class BadRefresh(BadRequest):
    """A `refresh` value the picker does not offer: refused like a bad range, not guessed at."""


@dataclass(frozen=True)
class Refresh:
    """A page's auto-refresh: the key in the URL and its period (0 = off)."""

    key: str
    default: str
    choices: tuple[str, ...] = tuple(REFRESH)

    @property
    def seconds(self) -> int:
        return REFRESH[self.key]

    @property
    def param(self) -> str:
        """The URL's value: empty (left out) when it is the page's default."""
        return "" if self.key == self.default else self.key


RefreshParam = Annotated[
    str, Query(alias="refresh", max_length=16, description="auto-refresh: off, 5s ... 5m")
]


def refresh_choice(value: str, *, default: str) -> Refresh:
    """The page's refresh from `?refresh=` ('' is the page's default)."""
    key = value.strip() or default
    if key not in REFRESH:
        raise BadRefresh(f"unknown refresh {value.strip()[:16]!r}; use one of {', '.join(REFRESH)}")
    return Refresh(key, default)


# --- forms ------------------------------------------------------------------------------------


def form_action(
    request: Request,
    who: Principal,
    *,
    csrf: str,
    act: Callable[[Session, AuditContext], None],
    done: str,
    refused: Callable[[Session, AppError], Response],
    role: Role | None = Role.OPERATOR,
    needs: str = "this action",
    after_refusal: Callable[[AppError], None] | None = None,
) -> Response:
    """A page's POST, the same way everywhere: CSRF check, role (None when `act` checks it per
    action), `act` in one committed write transaction, then POST-redirect-GET to `done` (303).

    A refusal (any AppError: a rule, a role, bad input) rolls the write back and re-renders the
    page through `refused` (on a read session) under the error's status, so the user sees why
    and keeps what they typed; `after_refusal` may record it first, in its own transaction.
    """
    check_csrf(request, csrf)
    try:
        if role is not None and not who.can(role):
            raise PermissionDenied(f"{needs} needs the {role} role; you act as {who.role}")
        with session_scope(request.app.state.write_sessions) as session:
            act(session, audit_context(request, who))
    except AppError as exc:
        if after_refusal is not None:
            after_refusal(exc)
        with request.app.state.read_sessions() as session:
            return refused(session, exc)
    return RedirectResponse(done, status_code=303)
