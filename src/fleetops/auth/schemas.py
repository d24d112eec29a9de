from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fleetops.auth.roles import Role

USERNAME = r"^[a-z][a-z0-9_.-]{1,63}$"


class UserCreate(BaseModel):
    username: str = Field(pattern=USERNAME)
    role: Role
    password: str = Field(min_length=12, max_length=1024)


class UserUpdate(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    locked_until: datetime | None


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    role: Role | None = Field(
        default=None, description="defaults to the owner's role; never above it"
    )
    expires_days: int | None = Field(default=None, ge=1, le=3650)
    username: str | None = Field(
        default=None, pattern=USERNAME, description="admins may create a token for another user"
    )


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    role: Role
    username: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="the secret; shown once, store it now")


class WhoAmI(BaseModel):
    username: str
    role: Role
    via: str
