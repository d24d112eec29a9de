"""Roles are ordered: each includes the rights of those below it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # reads everything but secrets
    DEVELOPER = "developer"  # may request changes
    OPERATOR = "operator"  # may approve and run changes, edit the inventory
    ADMIN = "admin"  # manages users and tokens, emergency actions

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank
