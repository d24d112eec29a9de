"""Login guessing is throttled per (user, source address) with a growing back-off, and per source
address (rate limit), audited. Guessing from one place never locks a user out everywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.auth import service
from fleetops.auth.exceptions import AccountLocked, InvalidCredentials
from fleetops.auth.roles import Role
from fleetops.models import AuditRecord, utcnow

POLICY = service.LoginPolicy(
    max_failures=3, window=timedelta(minutes=5), lockout=timedelta(minutes=15)
)
PASSWORD = "the-right-password"


def ctx(source: str = "10.0.0.1") -> AuditContext:
    return AuditContext(actor="anonymous", source=source)


@pytest.fixture
def alice(session: Session) -> None:
    service.create_user(
        session, AuditContext(actor="test"), username="alice", role=Role.OPERATOR, password=PASSWORD
    )
    session.commit()


def attempt(
    session: Session,
    password: str,
    *,
    source: str = "10.0.0.1",
    user: str = "alice",
    minutes: float = 0,
) -> service.LoginOutcome:
    outcome = service.login(
        session,
        ctx(source),
        username=user,
        password=password,
        policy=POLICY,
        now=utcnow() + timedelta(minutes=minutes),
    )
    session.commit()  # as the edge does, before answering
    return outcome


@pytest.mark.usefixtures("alice")
def test_right_password_logs_in_and_wrong_one_does_not(session: Session) -> None:
    assert attempt(session, PASSWORD).user is not None
    failed = attempt(session, "wrong")
    assert failed.user is None
    assert isinstance(failed.error, InvalidCredentials)
    unknown = attempt(session, "whatever", user="nobody")
    assert str(unknown.error) == str(failed.error)  # does not reveal which users exist


@pytest.mark.usefixtures("alice")
def test_guessing_locks_the_user_out_from_that_address_only(session: Session) -> None:
    for _ in range(POLICY.max_failures):
        attempt(session, "wrong", source="198.51.100.66")
    locked = attempt(session, PASSWORD, source="198.51.100.66")
    assert isinstance(locked.error, AccountLocked)
    assert locked.user is None
    assert attempt(session, PASSWORD, source="10.9.9.9").user is not None  # alice, elsewhere
    assert attempt(session, PASSWORD, source="198.51.100.66", minutes=6).user is not None


@pytest.mark.usefixtures("alice")
def test_the_back_off_grows_with_each_round_of_failures(session: Session) -> None:
    guesser = "198.51.100.77"
    for _ in range(POLICY.max_failures):
        attempt(session, "wrong", source=guesser)
    # Each time the back-off ends, one more guess, and the next wait: 5 min, 5, then 10.
    for minute in (5.5, 11, 16.5):
        assert isinstance(attempt(session, "wrong", source=guesser, minutes=minute).error,
                          InvalidCredentials)  # fmt: skip
        early = attempt(session, PASSWORD, source=guesser, minutes=minute + 1)
        assert isinstance(early.error, AccountLocked)  # not even the right password
    assert isinstance(attempt(session, PASSWORD, source=guesser, minutes=26).error, AccountLocked)
    assert attempt(session, PASSWORD, source=guesser, minutes=27).user is not None
    assert [POLICY.backoff(n).total_seconds() / 60 for n in (2, 3, 6, 9, 30)] == [
        0, 5, 10, 15, 15,
    ]  # fmt: skip


@pytest.mark.usefixtures("alice")
def test_source_address_is_rate_limited_across_users(session: Session) -> None:
    for i in range(POLICY.max_per_source):
        attempt(session, "wrong", user=f"guess{i}", source="192.0.2.7")
    refused = attempt(session, PASSWORD, source="192.0.2.7")
    assert isinstance(refused.error, AccountLocked)
    assert attempt(session, PASSWORD, source="192.0.2.8").user is not None
    assert attempt(session, PASSWORD, source="192.0.2.7", minutes=6).user is not None


@pytest.mark.usefixtures("alice")
def test_every_checked_attempt_is_audited(session: Session) -> None:
    for _ in range(POLICY.max_failures):
        attempt(session, "wrong")
    refused = attempt(session, PASSWORD)
    outcomes = session.scalars(
        select(AuditRecord.outcome)
        .where(AuditRecord.action == "auth.login")
        .order_by(AuditRecord.id)
    ).all()
    assert outcomes == ["denied", "denied", "locked"]
    # Refused before its password was checked: the edge counts it in its refusal log.
    assert (refused.user, refused.refused) == (None, "locked")
    sources = set(
        session.scalars(select(AuditRecord.source).where(AuditRecord.action == "auth.login"))
    )
    assert sources == {"10.0.0.1"}
