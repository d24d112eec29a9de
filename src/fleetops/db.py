"""Engines, sessions and migrations.

The edge (a request, a CLI command, a background task) opens a session and commits; services only
flush. SQLite runs in WAL mode with real transactions (the driver's implicit ones are replaced by an
explicit BEGIN) so that SAVEPOINTs and concurrent readers behave as on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite, create the file's folder and switch on WAL and foreign keys."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so read-then-write (the audit chain) cannot
        # fail half-way with SQLITE_BUSY; readers stay concurrent under WAL.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITE_OPTION = "fleetops_write"


def make_session_factory(engine: Engine, *, write: bool = True) -> sessionmaker[Session]:
    """Build a session factory; `write=False` for read-only edges (GET requests, listings)."""
    bind = engine.execution_options(**{WRITE_OPTION: True}) if write else engine
    return sessionmaker(bind, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session, commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def lock(session: Session, name: str) -> None:
    """Take the named write lock until the transaction ends: writers of `name` on one PostgreSQL
    database take turns (an advisory lock, keyed by schema and name, so test schemas and
    unrelated locks do not collide). SQLite's write sessions are serialised already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':' || :name))"),
            {"name": name},
        )


class Leadership:
    """Which server process does the work that must happen once per database: driving changes,
    the health policy, ticket webhooks, retention.

    On PostgreSQL the leader holds a session-level advisory lock (keyed by database, schema and
    `name`) on a connection of its own, for as long as it runs; when it stops or dies the server
    drops the lock with the connection and a standby, retrying every `retry` seconds, takes over.
    With SQLite one process owns the file, so it leads at once. It is a background service of
    the server itself: nothing to start, and stopping gives up the lead.
    """

    # The key the change engine has always used, so a server of an older release that still
    # holds it is not joined by a second leader during an upgrade.
    def __init__(self, engine: Engine, name: str = "engine-leader", *, retry: float = 2.0) -> None:
        self.engine = engine
        self.name = name
        self.retry = retry
        self.leading = False
        self._conn: Connection | None = None
        self._electing = asyncio.Lock()

    async def wait(self) -> None:
        """Return once this process leads (callers share one election)."""
        async with self._electing:
            if self.leading:
                return
            if self.engine.dialect.name != "postgresql":
                self.leading = True
                return
            conn = await asyncio.to_thread(self.engine.connect)
            try:
                while not await asyncio.to_thread(self._try_lock, conn):
                    await asyncio.sleep(self.retry)
            except BaseException:
                await asyncio.to_thread(conn.invalidate)
                raise
            self._conn, self.leading = conn, True

    def _try_lock(self, conn: Connection) -> bool:
        got = conn.execute(
            text(
                "SELECT pg_try_advisory_lock(hashtext(current_database() || '.' || current_schema()"
                " || '.fleetops-' || :name))"
            ),
            {"name": self.name},
        ).scalar()
        conn.commit()
        return bool(got)

    async def start(self) -> None:
        """Nothing to do: the election happens when the first leader-only part waits for it."""

    async def stop(self) -> None:
        """Give up the lead: really close the connection (not back to the pool), so the lock
        goes with it."""
        conn, self._conn, self.leading = self._conn, None, False
        if conn is not None:
            await asyncio.to_thread(conn.invalidate)


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at our migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
