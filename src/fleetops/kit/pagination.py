"""Offset pagination shared by every list endpoint and page."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")

MAX_LIMIT = 1000
# Far beyond any real listing, and inside every database's 64-bit integer range.
MAX_OFFSET = 2**31 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]


class PageParams(BaseModel):
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(
    session: Session, query: Select[Any], *, limit: int, offset: int
) -> tuple[list[Any], int]:
    """Return one page of `query`'s rows and the total count."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = list(session.scalars(query.limit(limit).offset(offset)))
    return rows, total
