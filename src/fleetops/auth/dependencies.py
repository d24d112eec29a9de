"""FastAPI dependencies: the request's database session and its authenticated principal.

Refusals (401, 403, and the 4xx of a refused submission) go to the audit log through the app's
`RefusalLog`, in their own transaction (the request's own is rolled back), counted per source and
minute so that a flood of them stays a few rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from fleetops.audit.refusals import RefusalLog
from fleetops.audit.service import AuditContext
from fleetops.auth import service as auth_service
from fleetops.auth.roles import Role
from fleetops.db import session_scope
from fleetops.errors import NotAuthenticated, PermissionDenied
from fleetops.models import ApiToken, User, utcnow

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "fleetops_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOUCH_EVERY = timedelta(minutes=1)  # bounds writes caused by reads


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user acting with the rights of a role (a token may carry fewer)."""

    user_id: int
    username: str
    role: Role
    via: str

    def can(self, role: Role) -> bool:
        return self.role.includes(role)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def audit_context(request: Request, principal: Principal | None) -> AuditContext:
    """Build the audit context of this request."""
    actor = principal.username if principal else "anonymous"
    return AuditContext(
        actor=actor,
        request_id=getattr(request.state, "request_id", ""),
        source=client_address(request),
    )


def get_session(request: Request) -> Iterator[Session]:
    """Yield the request's session: read-only for GET, a committing write session otherwise."""
    state = request.app.state
    if request.method in READ_METHODS:
        with state.read_sessions() as session:
            yield session
        return
    with session_scope(state.write_sessions) as session:
        yield session


# "function": the session commits when the handler returns, before the response is sent. (The
# default, "request", would commit after the client has its answer: a 201 for a change that a
# failed commit then loses, and a client that reads it back too early finds nothing.)
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def record_refusal(request: Request, principal: Principal | None, outcome: str) -> None:
    """Audit a refused call: the first of its kind in a minute at once, the rest as a count."""
    refusals: RefusalLog = request.app.state.refusals
    route = request.scope.get("route")
    refusals.refuse(
        audit_context(request, principal),
        action=f"http.{request.method.lower()}",
        entity_type="route",
        entity_id=request.url.path[:256],
        outcome=outcome,
        group=getattr(route, "path", None) or request.url.path[:256],
    )


# Declares the scheme in OpenAPI (the "Authorize" button of /api/docs) and reads the header.
bearer_scheme = HTTPBearer(auto_error=False, description="an API token: `fleetops token create`")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def _from_token(session: Session, raw: str) -> tuple[Principal, int | None] | None:
    """The token's principal, and its id when its last-used time is due for an update."""
    token = auth_service.resolve_token(session, raw)
    if token is None:
        return None
    # A token acts with the lower of its own scope and its owner's role now, read on every
    # request: a demoted owner's old tokens lose the rights the owner lost.
    role = min(Role(token.role), Role(token.user.role), key=lambda r: r.rank)
    principal = Principal(token.user_id, token.user.username, role, f"token:{token.prefix}")
    stale = token.last_used_at is None or utcnow() - token.last_used_at > TOUCH_EVERY
    return principal, token.id if stale else None


def _touch(request: Request, token_id: int) -> None:
    with session_scope(request.app.state.write_sessions) as ws:
        token = ws.get(ApiToken, token_id)
        if token is not None:
            token.last_used_at = utcnow()


def _from_cookie(session: Session, raw: str) -> Principal | None:
    ws = auth_service.resolve_web_session(session, raw)
    if ws is None:
        return None
    return Principal(ws.user_id, ws.user.username, Role(ws.user.role), "session")


def _cookie_may_not_write(request: Request) -> bool:
    """Whether this is an API call that changes something: the UI session cookie does not
    authorise those. The pages' own scripts only read the API; their changes go through forms
    with a CSRF token, so a page of another site (or a sibling subdomain, which SameSite=Lax
    lets through) cannot make a logged-in browser act through the API."""
    return request.url.path.startswith("/api/") and request.method not in SAFE_METHODS


def optional_principal(request: Request, bearer: BearerDep) -> Principal | None:
    """Identify the caller by bearer token, UI session cookie, or the local CLI identity.

    Uses its own short read session, so no write lock is held while refusing a call.
    """
    local: Principal | None = getattr(request.app.state, "local_principal", None)
    if local is not None:
        return local
    cookie = request.cookies.get(SESSION_COOKIE)
    if bearer is None and cookie and _cookie_may_not_write(request):
        cookie = None  # a page's session reads the API; a change goes through a CSRF-checked form
    if bearer is None and not cookie:
        return None
    with request.app.state.read_sessions() as session:
        if bearer is None:
            return _from_cookie(session, cookie or "")
        found = _from_token(session, bearer.credentials)
    if found is None:
        return None
    principal, stale_token = found
    if stale_token is not None:
        _touch(request, stale_token)
    return principal


def current_principal(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Principal:
    """Require an authenticated caller (401 otherwise, audited)."""
    if principal is None:
        record_refusal(request, None, "unauthenticated")
        raise NotAuthenticated(
            "authentication required: send 'Authorization: Bearer <token>' "
            "(create one with `fleetops token create`)"
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(role: Role) -> Callable[..., Principal]:
    """Dependency factory: the caller must hold at least `role` (403 otherwise, audited)."""

    def dependency(request: Request, principal: CurrentPrincipal) -> Principal:
        if not principal.can(role):
            record_refusal(request, principal, "forbidden")
            raise PermissionDenied(
                f"this action needs the {role} role; you act as {principal.role}"
            )
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Developer = Annotated[Principal, Depends(require(Role.DEVELOPER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def load_user(session: Session, principal: Principal) -> User:
    """The principal's user row (it exists: tokens and sessions die with their user)."""
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotAuthenticated("this identity no longer exists")
    return user
