"""Logging in and out of the web UI.

The session cookie holds a random secret (stored hashed server-side) and is HttpOnly, SameSite=Lax
and Secure over TLS. The login form has no session to bind a CSRF token to, so it uses a signed
double-submit cookie (`fleetops_csrf`, scoped to /login): the hidden field must be the HMAC of
that cookie, which a cross-site page can neither read nor compute.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from fleetops.audit.refusals import RefusalLog
from fleetops.audit.service import AuditContext
from fleetops.auth import service as auth_service
from fleetops.auth.dependencies import (
    SESSION_COOKIE,
    Principal,
    audit_context,
    optional_principal,
)
from fleetops.config import Settings
from fleetops.dashboard.render import check_csrf, render, sign, tokens_match
from fleetops.db import session_scope

LOGIN_CSRF_COOKIE = "fleetops_csrf"
_LOGIN_PURPOSE = "login-csrf"

router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str:
    """Keep a post-login target only if it is a path on this site (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    # Browsers read `\` as `/` (`/\evil.com`); control characters can smuggle in a host.
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"
    return value


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or _settings(request).force_secure_cookies


def _login_form(
    request: Request,
    *,
    next_url: str,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    """Render the form and (re)issue the double-submit cookie its token is bound to."""
    raw = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not 16 <= len(raw) <= 128:
        raw = secrets.token_urlsafe(32)
    context = {
        "next": next_url,
        "username": username,
        "error": error,
        "login_csrf": sign(request, _LOGIN_PURPOSE, raw),
    }
    response = render(request, "login.html", context, status_code=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        raw,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/login",
    )
    return response


@router.get("/login")
def login_page(
    request: Request,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    next: str = "/",
) -> Response:
    """The login form; someone already logged in goes straight on."""
    target = safe_next(next)
    if principal is not None:
        return RedirectResponse(target, status_code=303)
    return _login_form(request, next_url=target)


@router.post("/login")
def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=256)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Check the password (throttled and audited by the service) and start a session."""
    target = safe_next(next)
    raw = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not raw or not tokens_match(sign(request, _LOGIN_PURPOSE, raw), csrf):
        return _login_form(
            request,
            next_url=target,
            username=username,
            status=403,
            error="CSRF check failed: the login form expired or came from another site. "
            "Submit it again (cookies must be enabled).",
        )
    if not username or not password:
        return _login_form(
            request,
            next_url=target,
            username=username,
            status=400,
            error="Enter a username and a password.",
        )
    settings = _settings(request)
    policy = _login_policy(settings)
    ctx = audit_context(request, None)
    cookie = None
    # Commit whatever happened, failures included: they drive the lockout and the audit trail.
    with session_scope(request.app.state.write_sessions) as session:
        outcome = auth_service.login(
            session, ctx, username=username, password=password, policy=policy
        )
        if outcome.user is not None:
            previous = request.cookies.get(SESSION_COOKIE)
            if previous:
                auth_service.close_web_session(session, ctx, previous)
            cookie = auth_service.open_web_session(
                session, user=outcome.user, hours=settings.session_hours, source=ctx.source
            )
    if outcome.refused:
        _log_refusal(request, ctx, username, outcome.refused)
    if cookie is None:
        error = outcome.error
        return _login_form(
            request,
            next_url=target,
            username=username,
            status=error.status_code if error else 401,
            error=error.detail if error else "invalid username or password",
        )
    return _signed_in(request, target, cookie, hours=settings.session_hours)


def _log_refusal(request: Request, ctx: AuditContext, username: str, refused: str) -> None:
    """Record a login refused before its password was checked (locked, rate limited)."""
    refusals: RefusalLog = request.app.state.refusals
    refusals.refuse(
        ctx, action="auth.login", entity_type="user", entity_id=username, outcome=refused
    )


def _login_policy(settings: Settings) -> auth_service.LoginPolicy:
    """The password throttle as configured."""
    return auth_service.LoginPolicy(
        max_failures=settings.login_max_failures,
        window=timedelta(seconds=settings.login_window_seconds),
        lockout=timedelta(seconds=settings.login_lockout_seconds),
    )


def _signed_in(request: Request, target: str, cookie: str, *, hours: int) -> Response:
    """Redirect to `target` with the new session cookie; the login form's CSRF cookie is spent."""
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=hours * 3600,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(
        LOGIN_CSRF_COOKIE, path="/login", secure=_secure(request), httponly=True, samesite="lax"
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=256)] = "") -> Response:
    """End the session server-side, then drop the cookie."""
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        check_csrf(request, csrf)
        with session_scope(request.app.state.write_sessions) as session:
            auth_service.close_web_session(session, audit_context(request, None), raw)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="lax"
    )
    return response
