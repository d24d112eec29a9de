"""Inspection JSON API: probe results with their verdicts, and per-model baselines."""

from __future__ import annotations

from fastapi import APIRouter

from fleetops.errors import ERROR_RESPONSES

router = APIRouter(tags=["inspection"], responses=ERROR_RESPONSES)
