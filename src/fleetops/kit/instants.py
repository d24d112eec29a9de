"""Instants as the API takes them: ISO 8601 date-times only.

Pydantic also reads numbers as Unix times and a bare date as midnight; the OpenAPI document says
`format: date-time`, so `1700000000` or `2026-12-06` must be refused, not guessed at."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_date_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME.match(value.strip()):
        raise ValueError(
            f"expected an ISO 8601 date-time such as 2026-12-06T18:00:00Z, got {value!r}"
        )
    return value


Instant = Annotated[datetime, BeforeValidator(_iso_date_time)]
AwareInstant = Annotated[AwareDatetime, BeforeValidator(_iso_date_time)]
