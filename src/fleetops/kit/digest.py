"""The digest under which fleetops stores secrets it must recognise but never keep (API and
ingest tokens): a SHA-256 of a long random value needs no salt or slow hash."""

from __future__ import annotations

import hashlib


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
