"""Inspection pages: a host's report (its curve over its model's band) and the fleet's outliers."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
