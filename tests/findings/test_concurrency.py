"""Concurrent reporters of one problem end with exactly one live finding."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from fleetops.audit import service as audit
from fleetops.db import make_session_factory, session_scope
from fleetops.models import AuditRecord, Finding
from tests.findings.factory import T0, report


def _waiting_on_locks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            or 0
        )


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_racing_insert_becomes_a_bump(engine: Engine) -> None:
    """B reads before A commits, so B inserts too: the unique key refuses it and B bumps A's."""
    sessions = make_session_factory(engine)
    first = sessions()
    mine, created = report(first)  # flushed, not committed: invisible to B
    assert created
    outcome: dict[str, object] = {}

    def reporter_b() -> None:
        with session_scope(sessions) as session:
            finding, was_created = report(session, now=T0 + timedelta(seconds=1))
            outcome.update(id=finding.id, created=was_created, occurrences=finding.occurrences)

    thread = threading.Thread(target=reporter_b)
    thread.start()
    deadline = time.monotonic() + 10
    while _waiting_on_locks(engine) == 0:  # B's insert waits on A's uncommitted key
        assert time.monotonic() < deadline, "the second reporter never blocked on the key"
        time.sleep(0.02)
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert outcome == {"id": mine.id, "created": False, "occurrences": 2}
    with sessions() as session:
        live = session.scalars(select(Finding).where(Finding.active_key.is_not(None))).all()
        assert [(f.id, f.occurrences) for f in live] == [(mine.id, 2)]


def test_many_threads_reporting_one_key(engine: Engine) -> None:
    threads, reports_each = 6, 5
    sessions = make_session_factory(engine)
    start = threading.Barrier(threads)

    def reporter(n: int) -> list[bool]:
        start.wait()
        created = []
        for i in range(reports_each):
            with session_scope(sessions) as session:
                now = T0 + timedelta(seconds=n * reports_each + i)
                created.append(report(session, now=now)[1])
        return created

    with ThreadPoolExecutor(threads) as pool:
        results = [c for created in pool.map(reporter, range(threads)) for c in created]
    assert results.count(True) == 1
    with sessions() as session:
        [finding] = session.scalars(select(Finding)).all()
        assert (finding.status, finding.occurrences) == ("open", threads * reports_each)
        creations = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "finding.create")
        )
        assert creations == 1
        assert audit.verify(session).ok
