"""Shared fixtures. Passwords are hashed with cheap argon2 parameters here: the suite creates
users for most tests, and the production cost is deliberately slow."""

import os

from argon2 import PasswordHasher

from fleetops.auth import service as _auth_service
from tests.fixtures.app import app, client, settings, tokens  # noqa: F401  (fixtures)
from tests.fixtures.db import (  # noqa: F401  (fixtures)
    db_url,
    engine,
    pg_schema_url,
    session,
    sqlite_template,
)
from tests.fixtures.sshd import sshd  # noqa: F401  (fixture)

# Local commands build the API in-process here: a persistent local server per test database would
# outlive the test (and hold PostgreSQL connections to dropped schemas). tests/test_localserver.py
# covers the persistent server itself.
os.environ["FLEETOPS_CLI_PERSIST_SECONDS"] = "0"
_auth_service.use_hasher(PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))
