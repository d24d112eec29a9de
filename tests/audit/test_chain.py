"""The audit chain verifies when untouched and pinpoints the first tampered record."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.models import AuditRecord

CTX = AuditContext(actor="alice", request_id="r1", source="127.0.0.1")


def _write(session: Session, n: int) -> list[AuditRecord]:
    records = [
        audit.record(
            session,
            CTX,
            action="host.update",
            entity_type="host",
            entity_id=f"dn-{i:03d}",
            before={"rack": "r01"},
            after={"rack": "r02"},
        )
        for i in range(n)
    ]
    session.commit()
    return records


def test_untouched_chain_verifies(session: Session) -> None:
    _write(session, 5)
    result = audit.verify(session)
    assert result.ok
    assert result.checked == 5


def test_edited_row_is_detected(session: Session) -> None:
    records = _write(session, 5)
    session.execute(
        update(AuditRecord).where(AuditRecord.id == records[2].id).values(actor="mallory")
    )
    session.commit()
    result = audit.verify(session)
    assert not result.ok
    assert result.first_bad_id == records[2].id
    assert result.checked == 2
    assert "edited" in result.reason


def test_edited_json_payload_is_detected(session: Session) -> None:
    records = _write(session, 3)
    session.execute(
        update(AuditRecord).where(AuditRecord.id == records[0].id).values(after={"rack": "r99"})
    )
    session.commit()
    assert audit.verify(session).first_bad_id == records[0].id


def test_deleted_row_is_detected(session: Session) -> None:
    records = _write(session, 4)
    session.delete(session.get(AuditRecord, records[1].id))
    session.commit()
    result = audit.verify(session)
    assert not result.ok
    assert result.first_bad_id == records[2].id
    assert "link broken" in result.reason


def test_records_link_to_their_predecessor(session: Session) -> None:
    _write(session, 3)
    rows = session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
    assert rows[0].prev_hash == audit.GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
