"""Users and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from fleetops.auth import service
from fleetops.auth.dependencies import (
    Admin,
    CurrentPrincipal,
    SessionDep,
    Viewer,
    audit_context,
    load_user,
)
from fleetops.auth.roles import Role
from fleetops.auth.schemas import (
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
    WhoAmI,
)
from fleetops.errors import ERROR_RESPONSES, NotFound, PermissionDenied
from fleetops.kit.pagination import MAX_OFFSET
from fleetops.models import ApiToken

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


def _token_read(token: ApiToken) -> TokenRead:
    return TokenRead(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        role=Role(token.role),
        username=token.user.username,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


@router.get("/whoami", response_model=WhoAmI)
def whoami(principal: Viewer) -> WhoAmI:
    """Who the presented credentials belong to, and the role they carry."""
    return WhoAmI(username=principal.username, role=principal.role, via=principal.via)


@router.get("/users", response_model=list[UserRead])
def list_users(session: SessionDep, _: Admin) -> list[UserRead]:
    """All users (admins only)."""
    return [UserRead.model_validate(u) for u in service.list_users(session)]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, request: Request, session: SessionDep, who: Admin) -> UserRead:
    """Create a user with a role."""
    user = service.create_user(
        session,
        audit_context(request, who),
        username=body.username,
        role=body.role,
        password=body.password,
    )
    return UserRead.model_validate(user)


@router.patch("/users/{username}", response_model=UserRead)
def update_user(
    username: str, body: UserUpdate, request: Request, session: SessionDep, who: Admin
) -> UserRead:
    """Change a user's role, disable it, or reset its password."""
    user = service.get_user(session, username=username)
    if user is None:
        raise NotFound(f"user {username!r} not found")
    service.update_user(
        session,
        audit_context(request, who),
        user,
        role=body.role,
        disabled=body.disabled,
        password=body.password,
    )
    return UserRead.model_validate(user)


@router.get("/tokens", response_model=list[TokenRead])
def list_tokens(session: SessionDep, who: CurrentPrincipal) -> list[TokenRead]:
    """Your tokens; admins see everyone's. Secrets are never returned."""
    owner = None if who.can(Role.ADMIN) else load_user(session, who)
    return [_token_read(t) for t in service.list_tokens(session, user=owner)]


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, request: Request, session: SessionDep, who: CurrentPrincipal
) -> TokenCreated:
    """Create an API token; its secret is in this response only."""
    if body.username and body.username != who.username:
        if not who.can(Role.ADMIN):
            raise PermissionDenied("only admins create tokens for other users")
        target = service.get_user(session, username=body.username)
        if target is None:
            raise NotFound(f"user {body.username!r} not found")
        owner = target
    else:
        owner = load_user(session, who)
    scope = body.role or min(Role(owner.role), who.role, key=lambda r: r.rank)
    if not who.role.includes(scope):
        raise PermissionDenied(f"a {who.role} credential cannot mint a {scope} token")
    token, plaintext = service.create_token(
        session,
        audit_context(request, who),
        user=owner,
        name=body.name,
        role=scope,
        expires_days=body.expires_days,
    )
    token.user = owner
    return TokenCreated(**_token_read(token).model_dump(), token=plaintext)


@router.delete("/tokens/{token_id}", response_model=TokenRead)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=MAX_OFFSET)],
    request: Request,
    session: SessionDep,
    who: CurrentPrincipal,
) -> TokenRead:
    """Revoke a token (yours; admins: any)."""
    owner = None if who.can(Role.ADMIN) else load_user(session, who)
    token = service.revoke_token(
        session, audit_context(request, who), token_id=token_id, owner=owner
    )
    session.refresh(token, attribute_names=["user"])
    return _token_read(token)
