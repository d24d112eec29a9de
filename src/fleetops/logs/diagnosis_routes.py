"""Diagnosis JSON API: rollup series for charts."""

from __future__ import annotations

from fastapi import APIRouter

from fleetops.errors import ERROR_RESPONSES

router = APIRouter(tags=["diagnosis"], responses=ERROR_RESPONSES)
