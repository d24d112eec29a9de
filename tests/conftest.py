from tests.fixtures.app import app, client, settings, tokens  # noqa: F401  (fixtures)
from tests.fixtures.db import (  # noqa: F401  (fixtures)
    db_url,
    engine,
    pg_schema_url,
    session,
    sqlite_template,
)
from tests.fixtures.sshd import sshd  # noqa: F401  (fixture)
