from __future__ import annotations

import pytest

from tests.fixtures.sshd import sshd  # noqa: F401  (fixture)


@pytest.fixture
def anyio_backend() -> str:
    """The engine runs on asyncio; so do these tests."""
    return "asyncio"
