"""Findings service on both databases: dedup, escalation, evidence, auto-resolve, transitions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.findings import service
from fleetops.findings.enums import FindingStatus
from fleetops.findings.exceptions import FindingNotFound, InvalidFinding
from fleetops.findings.service import MAX_EVIDENCE, merge_evidence
from fleetops.findings.states import TransitionRefused, transition
from fleetops.models import AuditRecord, Finding
from tests.findings.factory import T0, lines_ref, report

ALICE = AuditContext(actor="alice", request_id="r1", source="127.0.0.1")


def audit_trail(session: Session, finding_id: int) -> list[tuple[str, str, object, object]]:
    """(actor, action, before, after) of a finding's audit records, oldest first."""
    rows = session.scalars(audit.query(entity_type="finding", entity_id=str(finding_id)))
    return [(r.actor, r.action, r.before, r.after) for r in reversed(list(rows))]


def test_same_key_twice_is_one_finding(session: Session) -> None:
    first, created = report(session)
    again, created_again = report(session, now=T0 + timedelta(minutes=3))
    session.commit()
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert session.scalar(select(func.count()).select_from(Finding)) == 1
    assert (again.occurrences, again.status) == (2, "open")
    assert (again.first_seen, again.last_seen) == (T0, T0 + timedelta(minutes=3))
    assert (again.dedup_key, again.active_key) == ("disk_slow:host:h001", "disk_slow:host:h001")
    # Creation is audited as the detector; the bump is not.
    [(actor, action, _, after)] = audit_trail(session, first.id)
    assert (actor, action) == ("detector:logs", "finding.create")
    assert isinstance(after, dict)
    assert after["severity"] == "warning"
    assert after["entity"] == "host:h001"


def test_an_explicit_dedup_key_groups_other_entities(session: Session) -> None:
    one, _ = report(session, entity="h001", dedup_key="rack-power:r07")
    two, created = report(session, entity="h002", dedup_key="rack-power:r07")
    assert (created, two.id, two.occurrences) == (False, one.id, 2)
    other, created = report(session, entity="h002")
    assert created
    assert other.dedup_key == "disk_slow:host:h002"


def test_after_resolve_a_recurrence_opens_a_new_finding(session: Session) -> None:
    old, _ = report(session)
    service.resolve(session, ALICE, finding_id=old.id, reason="replaced the disk")
    session.commit()
    assert (old.status, old.active_key, old.resolution) == ("resolved", None, "replaced the disk")
    new, created = report(session, now=T0 + timedelta(hours=1))
    session.commit()
    assert created
    assert new.id != old.id
    assert (new.status, new.occurrences, new.active_key) == ("open", 1, old.dedup_key)
    session.refresh(old)
    assert (old.status, old.occurrences) == ("resolved", 1)  # history stays as it was


def test_severity_and_score_only_rise_and_the_worst_title_stays(session: Session) -> None:
    finding, _ = report(session, severity="warning", score=2.0, title="slow")
    report(session, severity="critical", score=5.0, title="failing", now=T0 + timedelta(minutes=1))
    assert (finding.severity, finding.score, finding.title) == ("critical", 5.0, "failing")
    report(session, severity="info", score=0.5, title="a bit slow", now=T0 + timedelta(minutes=2))
    session.commit()
    session.refresh(finding)
    assert (finding.severity, finding.score, finding.title) == ("critical", 5.0, "failing")
    assert finding.occurrences == 3


def test_onset_keeps_the_earliest_event_time(session: Session) -> None:
    finding, _ = report(session, onset_at=T0 - timedelta(minutes=1))
    report(session, onset_at=T0 - timedelta(minutes=30), now=T0 + timedelta(minutes=1))
    report(session, onset_at=T0, now=T0 + timedelta(minutes=2))
    assert finding.onset_at == T0 - timedelta(minutes=30)


def test_evidence_merges_without_duplicates_newest_last_and_bounded(session: Session) -> None:
    finding, _ = report(session, evidence=[lines_ref(minute=0), lines_ref(minute=1)])
    report(session, evidence=[lines_ref(minute=1), lines_ref(minute=2)], details={"errors": 3})
    assert [r["from"][11:16] for r in finding.evidence] == ["12:00", "12:01", "12:02"]
    # A ref reported again is current evidence: it moves to the end.
    report(session, evidence=[lines_ref(minute=0)], details={"errors": 5, "device": "sda"})
    assert [r["from"][11:16] for r in finding.evidence] == ["12:01", "12:02", "12:00"]
    assert finding.details == {"errors": 5, "device": "sda"}
    for batch in range(6):
        refs = [lines_ref(minute=10 + batch * 10 + i) for i in range(10)]
        report(session, evidence=refs, now=T0 + timedelta(minutes=batch))
    session.commit()
    session.refresh(finding)
    assert len(finding.evidence) == MAX_EVIDENCE
    minutes = [r["from"] for r in finding.evidence]
    assert len(set(minutes)) == MAX_EVIDENCE
    assert minutes[-1] == lines_ref(minute=69)["from"]  # the newest, last
    assert minutes[0] == lines_ref(minute=20)["from"]  # the oldest dropped first


def test_merge_evidence_treats_key_order_as_the_same_ref() -> None:
    a = {"type": "finding", "id": 3}
    b = {"id": 3, "type": "finding"}
    assert merge_evidence([a], [b]) == [b]
    assert merge_evidence([a, a], [], limit=1) == [a]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"severity": "fatal"}, "severity must be one of info | warning | critical, got 'fatal'"),
        ({"entity": " "}, "entity must be a non-empty string"),
        ({"kind": "k" * 65}, "kind is 65 characters long; at most 64 are allowed"),
        ({"dedup_key": "x" * 256}, "dedup_key is 256 characters long; at most 255"),
        ({"evidence": [{"host": "h1"}]}, "evidence[0] must be a mapping with a `type`"),
        ({"evidence": "lines"}, "evidence must be a list of refs, got str"),
        ({"score": float("nan")}, "score must be a finite number"),
        ({"title": ""}, "title must not be empty"),
    ],
)
def test_a_bad_report_is_refused_with_a_clear_message(
    session: Session, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidFinding) as refused:
        report(session, **overrides)
    assert message in refused.value.detail
    assert session.scalar(select(func.count()).select_from(Finding)) == 0


def test_naive_times_are_refused(session: Session) -> None:
    with pytest.raises(InvalidFinding, match="onset_at must be timezone-aware"):
        report(session, onset_at=T0.replace(tzinfo=None))


def test_a_long_title_is_cut_not_refused(session: Session) -> None:
    finding, _ = report(session, title="x" * 600)
    assert len(finding.title) == 500
    assert finding.title.endswith("…")


def test_auto_resolve_closes_only_cleared_and_quiet_findings(session: Session) -> None:
    quiet = timedelta(minutes=10)
    still, _ = report(session, entity="h001")  # still active: kept
    cleared, _ = report(session, entity="h002")  # cleared and quiet: resolved
    recent, _ = report(session, entity="h003", now=T0 + timedelta(minutes=25))  # seen lately
    other, _ = report(session, entity="h004", detector="inspection")  # another detector's
    acked, _ = report(session, entity="h005")
    service.acknowledge(session, ALICE, finding_id=acked.id, now=T0)
    session.commit()

    now = T0 + timedelta(minutes=30)
    resolved = service.auto_resolve(
        session, detector="logs", still_active_keys={still.dedup_key}, now=now, quiet_for=quiet
    )
    session.commit()
    assert sorted(f.id for f in resolved) == [cleared.id, acked.id]
    for finding in (cleared, acked):
        session.refresh(finding)
        assert (finding.status, finding.resolved_by, finding.resolved_at) == (
            "resolved",
            "detector:logs",
            now,
        )
        assert (finding.resolution, finding.active_key) == ("condition cleared", None)
    assert [f.status for f in (still, recent, other)] == ["open", "open", "open"]
    assert audit_trail(session, cleared.id)[-1] == (
        "detector:logs",
        "finding.resolved",
        {"status": "open"},
        {"status": "resolved", "reason": "condition cleared"},
    )
    again = service.auto_resolve(
        session, detector="logs", still_active_keys=[], now=now, quiet_for=quiet
    )
    assert [f.id for f in again] == [still.id]  # no longer reported active: it goes too


def test_transitions_set_their_fields_and_are_audited(session: Session) -> None:
    finding, _ = report(session)
    at = T0 + timedelta(minutes=1)
    service.acknowledge(session, ALICE, finding_id=finding.id, reason="looking", now=at)
    assert (finding.status, finding.acknowledged_by, finding.acknowledged_at) == (
        "acknowledged",
        "alice",
        at,
    )
    assert finding.active_key == finding.dedup_key  # still live: reports keep bumping it
    assert report(session, now=at)[0].occurrences == 2
    done = T0 + timedelta(minutes=2)
    service.resolve(session, ALICE, finding_id=finding.id, reason="  swapped sda  ", now=done)
    session.commit()
    assert (finding.status, finding.resolved_by, finding.resolved_at) == ("resolved", "alice", done)
    assert (finding.resolution, finding.active_key) == ("swapped sda", None)
    assert audit_trail(session, finding.id)[1:] == [
        (
            "alice",
            "finding.acknowledged",
            {"status": "open"},
            {"status": "acknowledged", "reason": "looking"},
        ),
        (
            "alice",
            "finding.resolved",
            {"status": "acknowledged"},
            {"status": "resolved", "reason": "swapped sda"},
        ),
    ]
    record = session.scalar(select(AuditRecord).where(AuditRecord.action == "finding.resolved"))
    assert record is not None
    assert (record.request_id, record.source) == ("r1", "127.0.0.1")
    assert audit.verify(session).ok


def test_refused_transitions_name_their_rule_and_change_nothing(session: Session) -> None:
    finding, _ = report(session)
    with pytest.raises(TransitionRefused) as no_reason:
        service.resolve(session, ALICE, finding_id=finding.id, reason="   ")
    assert no_reason.value.detail.startswith("ReasonRequiredToResolveByHand: resolving finding")
    assert no_reason.value.status_code == 409
    with pytest.raises(
        TransitionRefused, match=r"OpenIsInitial: finding \d+ cannot go back to open"
    ):
        transition(session, finding, FindingStatus.OPEN, ctx=ALICE, now=T0)
    service.acknowledge(session, ALICE, finding_id=finding.id)
    with pytest.raises(TransitionRefused) as twice:
        service.acknowledge(session, ALICE, finding_id=finding.id)
    assert (
        twice.value.detail == f"AlreadyThere: finding {finding.id} is already acknowledged by alice"
    )
    # A detector closes without a reason of its own.
    detector = service.detector_context("logs")
    transition(session, finding, FindingStatus.RESOLVED, ctx=detector, now=T0)
    with pytest.raises(TransitionRefused) as final:
        service.acknowledge(session, ALICE, finding_id=finding.id)
    assert final.value.detail.startswith(
        f"ResolvedIsFinal: finding {finding.id} was resolved by detector:logs at "
    )
    assert final.value.detail.endswith(
        "it cannot become acknowledged (a recurrence opens a new finding)"
    )
    session.commit()
    actions = [action for _, action, _, _ in audit_trail(session, finding.id)]
    assert actions == ["finding.create", "finding.acknowledged", "finding.resolved"]
    with pytest.raises(FindingNotFound, match="finding 999 not found"):
        service.acknowledge(session, ALICE, finding_id=999)


def test_query_filters_newest_first_and_counts(session: Session) -> None:
    a, _ = report(session, entity="h001", severity="critical")
    b, _ = report(session, entity="h002", kind="link_flap", entity_type="link", severity="info")
    c, _ = report(session, entity="h003", now=T0 + timedelta(hours=1))
    service.acknowledge(session, ALICE, finding_id=b.id)
    service.resolve(session, ALICE, finding_id=c.id, reason="false alarm")
    session.commit()

    def ids(**filters: object) -> list[int]:
        rows, _ = service.query(session, **filters)  # type: ignore[arg-type]
        return [f.id for f in rows]

    assert ids() == [c.id, b.id, a.id]
    assert ids(status="acknowledged") == [b.id]
    assert ids(kind="link_flap") == [b.id]
    assert ids(entity="h001") == [a.id]
    assert ids(severity="critical") == [a.id]
    assert ids(since=T0 + timedelta(minutes=30)) == [c.id]
    rows, total = service.query(session, limit=1, offset=1)
    assert ([f.id for f in rows], total) == ([b.id], 3)
    with pytest.raises(
        InvalidFinding, match=re.escape("status must be one of open | acknowledged | resolved")
    ):
        service.query(session, status="closed")
    counts = service.counts(session)
    assert counts.by_status == {"open": 1, "acknowledged": 1, "resolved": 1}
    assert counts.live_by_severity == {"info": 1, "warning": 0, "critical": 1}
    assert counts.live == 2
