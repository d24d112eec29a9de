from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from fleetops.kit.pagination import Page


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    outcome: str
    before: Any
    after: Any
    request_id: str
    source: str
    hash: str


AuditPage = Page[AuditRead]


class AuditVerify(BaseModel):
    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str
