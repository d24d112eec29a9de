from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.models import Region


def test_fresh_database_is_migrated_and_empty(session: Session) -> None:
    assert session.scalars(select(Region)).all() == []
    session.add(Region(name="eu-west"))
    session.commit()
    assert session.scalars(select(Region.name)).all() == ["eu-west"]
