"""Property-based API conformance: schemathesis drives every operation from the OpenAPI spec.

As admin and as viewer, on both databases: no response may be a 5xx, undocumented, or out of
schema, and schema-valid input is refused only as schemathesis.toml allows (rules JSON Schema
cannot state). A short stateful run follows the document's links (create, then read, update,
delete). Bounded examples keep it in the suite's time budget; bench/fuzz.py runs the long fuzz.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text

from fleetops.audit.service import AuditContext
from fleetops.config import Settings
from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.apply import apply_document
from fleetops.main import create_app
from fleetops.sim.fleet import generate
from tests.fixtures import st_hooks  # noqa: F401  (valid selectors and workflows)
from tests.fixtures.app import Tokens, make_settings, seed_users
from tests.fixtures.db import PG_BASE_URL

EXAMPLES = int(os.environ.get("FLEETOPS_SCHEMATHESIS_EXAMPLES", "12"))
FUZZ = Path(__file__).parent.parent / "bench" / "fuzz.py"


def _database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'schema.db'}"
        return
    schema = f"fleetops_st_{os.getpid()}"
    admin = make_engine(PG_BASE_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"'))
    yield f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Tokens]]:
    """A running app on a small fleet, with a token per role."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    for url in _database(request.param, tmp):
        app = create_app(make_settings(url, tmp / "data"))
        with TestClient(app):
            tokens = seed_users(url)
            engine = make_engine(url)
            with session_scope(make_session_factory(engine)) as session:
                apply_document(session, AuditContext(actor="test"), generate(hosts=30, racks=3))
            engine.dispose()
            yield app, tokens


@pytest.fixture(scope="module")
def api_schema(api_app: tuple[Any, Tokens]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", api_app[0])


def _operation_labels() -> list[str]:
    spec = create_app(Settings(database_url="sqlite://")).openapi()
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item]


@pytest.mark.slow
@pytest.mark.parametrize("label", _operation_labels())
def test_api_conforms_to_its_schema(
    label: str, api_app: tuple[Any, Tokens], api_schema: Any
) -> None:
    operation = api_schema.find_operation_by_label(label)
    # Earlier operations may have revoked tokens or disabled users: start each one afresh.
    tokens = seed_users(api_app[0].state.settings.database_url)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        # The viewer first, so its calls meet the data before the admin's changes.
        for role in ("viewer", "admin"):
            case.call_and_validate(headers=tokens.headers(role))

    check()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_stateful_fuzz_along_the_links_finds_nothing(backend: str) -> None:
    """bench/fuzz.py's stateful phase, small: a real server, schemathesis following the links
    (a host created, then read, changed, deleted; a change submitted, then approved or
    cancelled): no server error, no undocumented status, no schema mismatch."""
    command = [sys.executable, str(FUZZ), "--phases", "stateful", "--examples", str(EXAMPLES)]
    if backend == "postgresql":
        command += ["--database-url", PG_BASE_URL]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verdict: PASS" in result.stdout
