"""Users, passwords, tokens, sessions and login throttling.

Secrets (passwords, tokens, session ids) are only ever stored as hashes and never logged or returned
after creation. Login failures are counted per user (lockout) and per source address (rate limit).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, joinedload

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.auth.exceptions import (
    AccountLocked,
    InvalidCredentials,
    LastAdmin,
    RoleTooHigh,
    UsernameTaken,
    WeakPassword,
)
from fleetops.auth.roles import Role
from fleetops.errors import AppError, NotFound
from fleetops.kit.digest import sha256
from fleetops.models import ApiToken, LoginFailure, User, WebSession, utcnow

_hasher = PasswordHasher()
TOKEN_PREFIX = "fo_"
MIN_PASSWORD = 12


def use_hasher(hasher: PasswordHasher) -> None:
    """Replace the password hasher. Hashing is slow on purpose; a test suite that creates users
    for every test uses cheap parameters (stored hashes name their own, so both verify)."""
    global _hasher
    _hasher = hasher
    _dummy_hash.cache_clear()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD} characters long")
    return _hasher.hash(password)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def _user_view(user: User) -> dict[str, object]:
    return {"username": user.username, "role": user.role, "disabled": user.disabled}


def get_user(session: Session, *, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(
    session: Session, ctx: AuditContext, *, username: str, role: Role, password: str
) -> User:
    """Create a user with a hashed password."""
    if get_user(session, username=username) is not None:
        raise UsernameTaken(f"user {username!r} already exists")
    user = User(username=username, role=role.value, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit.record(
        session,
        ctx,
        action="user.create",
        entity_type="user",
        entity_id=username,
        after=_user_view(user),
    )
    return user


def update_user(
    session: Session,
    ctx: AuditContext,
    user: User,
    *,
    role: Role | None = None,
    disabled: bool | None = None,
    password: str | None = None,
) -> User:
    """Change a user's role, disable/enable it, or reset its password (ends its sessions)."""
    before = _user_view(user)
    demoted = (role is not None and role != Role.ADMIN) or bool(disabled)
    if user.role == Role.ADMIN and not user.disabled and demoted:
        _keep_an_admin(session, user)
    lowered = role is not None and role.rank < Role(user.role).rank
    if role is not None:
        user.role = role.value
    if disabled is not None:
        user.disabled = disabled
    if password is not None:
        user.password_hash = hash_password(password)
        user.failed_logins = 0
        user.locked_until = None
    revoked: list[int] = []
    if password is not None or disabled or lowered:
        # Whoever held the old password or role keeps nothing of it: sessions end, tokens die.
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        revoked = _revoke_all_tokens(session, user)
    session.flush()
    after = _user_view(user) | ({"password": "reset"} if password else {})
    if revoked:
        after["tokens_revoked"] = revoked
    audit.record(
        session,
        ctx,
        action="user.update",
        entity_type="user",
        entity_id=user.username,
        before=before,
        after=after,
    )
    return user


def _revoke_all_tokens(session: Session, user: User) -> list[int]:
    """Revoke every live token of `user`; their ids."""
    live = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    )
    now = utcnow()
    ids = []
    for token in live:
        token.revoked_at = now
        ids.append(token.id)
    return ids


def _keep_an_admin(session: Session, user: User) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.disabled.is_(False), User.id != user.id)
    )
    if not others:
        raise LastAdmin(f"{user.username!r} is the last active admin; make another admin first")


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


@dataclass
class LoginOutcome:
    """The edge commits the recorded failures before raising `error`. An attempt refused
    before its password was checked (`refused`: locked, rate_limited) is not recorded here: the
    edge counts it in its refusal log, so a flood of them stays a few audit rows."""

    user: User | None
    error: AppError | None = None
    refused: str = ""


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=5)
    lockout: timedelta = timedelta(minutes=15)
    memory: timedelta = timedelta(days=1)  # how far back a pair's failures count for back-off

    @property
    def max_per_source(self) -> int:
        return self.max_failures * 4

    def backoff(self, failures: int) -> timedelta:
        """How long a (user, address) pair waits after `failures` recent failures: nothing below
        max_failures, then `window`, doubled for each further max_failures, up to `lockout`."""
        if failures < self.max_failures:
            return timedelta(0)
        doubled: timedelta = self.window * (1 << min(failures // self.max_failures - 1, 16))
        return min(doubled, self.lockout)


def login(
    session: Session,
    ctx: AuditContext,
    *,
    username: str,
    password: str,
    policy: LoginPolicy,
    now: datetime | None = None,
) -> LoginOutcome:
    """Check a password under per-address and per-(user, address) limits.

    Failures lock a user out only from the address they came from, with a growing back-off:
    nobody can lock the admin out from everywhere by guessing wrong from one place. The
    password is hashed with no transaction open (argon2 takes a while; on SQLite a write
    transaction would hold the database's lock all that time)."""
    now = now or utcnow()
    refusal = _gate(session, ctx, username=username, policy=policy, now=now)
    user = get_user(session, username=username)
    stored = user.password_hash if user is not None and not user.disabled else None
    session.commit()  # end the read transaction before the slow part
    if refusal is not None:
        outcome, error = refusal
        return LoginOutcome(None, error, refused=outcome)
    if _password_ok(stored, password) and user is not None:
        user = get_user(session, username=username)
        if user is not None and not user.disabled:
            user.failed_logins = 0
            user.locked_until = None
            audit.record(
                session,
                replace(ctx, actor=username),
                action="auth.login",
                entity_type="user",
                entity_id=username,
            )
            return LoginOutcome(user)
    return _fail(session, ctx, username=username, policy=policy, now=now)


def _gate(
    session: Session, ctx: AuditContext, *, username: str, policy: LoginPolicy, now: datetime
) -> tuple[str, AppError] | None:
    """Why this attempt is refused before any password is checked, or None."""
    recent = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.source == ctx.source[:64], LoginFailure.at >= now - policy.window)
    )
    if (recent or 0) >= policy.max_per_source:
        wait = int(policy.window.total_seconds())
        return "rate_limited", AccountLocked(
            f"too many failed logins from this address; wait {wait} s"
        )
    mine = session.execute(
        select(func.count(), func.max(LoginFailure.at)).where(
            LoginFailure.username == username[:64],
            LoginFailure.source == ctx.source[:64],
            LoginFailure.at >= now - policy.memory,
        )
    ).one()
    failures, last = mine[0] or 0, mine[1]
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    until = last + policy.backoff(failures) if last is not None else now
    if until > now:
        wait = int((until - now).total_seconds()) + 1
        return "locked", AccountLocked(
            f"login temporarily locked for this user from this address (too many failed "
            f"logins); retry in {wait} s"
        )
    return None


@cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so timing does not reveal valid usernames."""
    return _hasher.hash("fleetops-dummy-password")


def _password_ok(stored: str | None, password: str) -> bool:
    """Verify against the stored hash; without one (no such user, or disabled) a dummy hash is
    verified anyway, so timing does not reveal which users exist."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _fail(
    session: Session, ctx: AuditContext, *, username: str, policy: LoginPolicy, now: datetime
) -> LoginOutcome:
    session.add(LoginFailure(username=username[:64], source=ctx.source[:64], at=now))
    session.flush()
    failures = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(
            LoginFailure.username == username[:64],
            LoginFailure.source == ctx.source[:64],
            LoginFailure.at >= now - policy.memory,
        )
    )
    outcome = "locked" if policy.backoff(failures or 0) > timedelta(0) else "denied"
    audit.record(
        session,
        ctx,
        action="auth.login",
        entity_type="user",
        entity_id=username[:256],
        outcome=outcome,
    )
    return LoginOutcome(None, InvalidCredentials("invalid username or password"))


# --- API tokens -------------------------------------------------------------------------------


def create_token(
    session: Session,
    ctx: AuditContext,
    *,
    user: User,
    name: str,
    role: Role | None = None,
    expires_days: int | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its plaintext, which is never shown again."""
    scope = role or Role(user.role)
    if not Role(user.role).includes(scope):
        raise RoleTooHigh(f"a {user.role} cannot create a {scope} token")
    secret = secrets.token_urlsafe(32)
    prefix = secrets.token_hex(4)
    plaintext = f"{TOKEN_PREFIX}{prefix}_{secret}"
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=prefix,
        token_hash=sha256(plaintext),
        role=scope.value,
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        ctx,
        action="token.create",
        entity_type="token",
        entity_id=token.id,
        after={
            "user": user.username,
            "name": name,
            "role": scope.value,
            "prefix": prefix,
            "expires_at": token.expires_at,
        },
    )
    return token, plaintext


def resolve_token(session: Session, raw: str, *, now: datetime | None = None) -> ApiToken | None:
    """Find the live token for a presented bearer secret."""
    now = now or utcnow()
    token = session.scalar(
        select(ApiToken)
        .options(joinedload(ApiToken.user))
        .where(ApiToken.token_hash == sha256(raw))
    )
    if token is None or token.revoked_at is not None or token.user.disabled:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    return token


def list_tokens(session: Session, *, user: User | None = None) -> list[ApiToken]:
    stmt = select(ApiToken).options(joinedload(ApiToken.user)).order_by(ApiToken.id)
    if user is not None:
        stmt = stmt.where(ApiToken.user_id == user.id)
    return list(session.scalars(stmt))


def revoke_token(
    session: Session, ctx: AuditContext, *, token_id: int, owner: User | None
) -> ApiToken:
    """Revoke a token; `owner` limits it to that user's tokens (None: any, for admins)."""
    token = session.get(ApiToken, token_id)
    if token is None or (owner is not None and token.user_id != owner.id):
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        audit.record(
            session,
            ctx,
            action="token.revoke",
            entity_type="token",
            entity_id=token.id,
            after={"prefix": token.prefix, "name": token.name},
        )
    return token


# --- UI sessions ------------------------------------------------------------------------------


def open_web_session(session: Session, *, user: User, hours: int, source: str) -> str:
    """Start a UI session and return the cookie value (stored hashed)."""
    raw = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            user_id=user.id,
            token_hash=sha256(raw),
            source=source[:64],
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    session.flush()
    return raw


def resolve_web_session(session: Session, raw: str) -> WebSession | None:
    ws = session.scalar(
        select(WebSession)
        .options(joinedload(WebSession.user))
        .where(WebSession.token_hash == sha256(raw))
    )
    if ws is None or ws.expires_at <= utcnow() or ws.user.disabled:
        return None
    return ws


def close_web_session(session: Session, ctx: AuditContext, raw: str) -> None:
    """End a UI session (logout); audited under the session's user."""
    ws = resolve_web_session(session, raw)
    session.execute(delete(WebSession).where(WebSession.token_hash == sha256(raw)))
    if ws is not None:
        audit.record(
            session,
            replace(ctx, actor=ws.user.username),
            action="auth.logout",
            entity_type="user",
            entity_id=ws.user.username,
        )


def ensure_admin(session: Session, *, password: str | None) -> tuple[User, str | None] | None:
    """On first start create `admin`; return it with the one-time password if one was generated."""
    if session.scalar(select(func.count()).select_from(User)):
        return None
    generated = None if password else generate_password()
    ctx = AuditContext(actor="system:bootstrap")
    user = create_user(
        session, ctx, username="admin", role=Role.ADMIN, password=password or generated or ""
    )
    return user, generated
