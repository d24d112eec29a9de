"""Dashboard fixtures: a small demo fleet for page tests, a live server and Chromium for UI tests.

Page tests log in as `admin`, whom the app bootstraps with the test password: every extra user
costs an Argon2 hash (~0.2 s here), which would dominate the suite's run time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fleetops.config import Settings
from fleetops.inventory.document import InventoryDoc
from tests.fixtures.app import make_settings
from tests.fixtures.browser import browser, live_server, load_fleet, page  # noqa: F401  (fixtures)

MAX_FAILURES = 3


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """The shared settings with a short lockout threshold, so lockout tests need few attempts."""
    return make_settings(db_url, tmp_path / "data", login_max_failures=MAX_FAILURES)


@pytest.fixture
def fleet(client: TestClient, db_url: str) -> InventoryDoc:
    """8 demo hosts in 2 racks on the app's database (after `client` has migrated it)."""
    return load_fleet(db_url, hosts=8, racks=2)
