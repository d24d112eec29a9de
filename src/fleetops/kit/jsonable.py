"""Canonical JSON, so hashes over stored records are reproducible on every database."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """Serialise with sorted keys and no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_default)


def to_jsonable(value: Any) -> Any:
    """Round-trip through canonical JSON: what the database will hand back."""
    return json.loads(canonical_json(value))
