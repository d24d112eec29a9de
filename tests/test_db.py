from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fleetops.models import Base, Region


def test_fresh_database_is_migrated_and_empty(session: Session) -> None:
    assert session.scalars(select(Region)).all() == []
    session.add(Region(name="eu-west"))
    session.commit()
    assert session.scalars(select(Region.name)).all() == ["eu-west"]


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    """A model change without its migration (or the reverse) shows up here, on both databases."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_no_foreign_key_deletes_history_with_its_host() -> None:
    """Only what is part of a host goes with it; every other row that names it stays (RESTRICT)."""
    parts = {"host_labels", "host_groups", "links", "host_leases"}
    hosts = Base.metadata.tables["hosts"]
    cascading = {
        fk.parent.table.name
        for table in Base.metadata.tables.values()
        for fk in table.foreign_keys
        if fk.column.table is hosts and fk.ondelete != "RESTRICT"
    }
    assert cascading == parts
