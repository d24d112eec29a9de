"""Findings use cases: detectors report, people acknowledge and resolve, dashboards count.

A finding names one problem (its `dedup_key`) on one entity. While it is live (open or
acknowledged) every new report of the same key bumps it instead of adding a row: occurrences and
last_seen grow, severity and score only ever rise, evidence refs accumulate (bounded). Once
resolved, the key is free and the next report opens a new finding: a recurrence is news.

Audit: opening a finding and every transition are audited; a bump is not (a noisy detector would
flood the audit log with one record per report). The finding row itself shows the bumps.
Services only flush; the caller commits.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleetops.audit import service as audit
from fleetops.audit.service import AuditContext
from fleetops.findings.enums import LIVE, FindingStatus, Severity
from fleetops.findings.exceptions import FindingNotFound, InvalidFinding, ReportContended
from fleetops.findings.schemas import Observation
from fleetops.findings.states import DETECTOR_PREFIX, transition
from fleetops.kit.jsonable import canonical_json, to_jsonable
from fleetops.kit.pagination import paginate
from fleetops.models import Finding, utcnow

MAX_EVIDENCE = 50
MAX_TITLE = 500
AUTO_RESOLVE_REASON = "condition cleared"
# Lengths of the identifying columns (see models/findings.py): refused beyond, never cut.
_KEY_LIMITS = {"kind": 64, "detector": 64, "entity_type": 32, "entity": 255, "dedup_key": 255}
# A key taken and freed again between our read and our insert this many times is not a race.
_ATTEMPTS = 5
_CHUNK = 500


def detector_context(detector: str) -> AuditContext:
    """The audit identity of a detector: `detector:<name>`."""
    return AuditContext(actor=f"{DETECTOR_PREFIX}{detector}", source="detector")


def default_key(kind: str, entity_type: str, entity: str) -> str:
    """One live finding per kind of problem per entity, unless the detector says otherwise."""
    return f"{kind}:{entity_type}:{entity}"


# --- report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Report:
    """A validated report, JSON values already as the database will hand them back."""

    kind: str
    detector: str
    entity_type: str
    entity: str
    severity: Severity
    score: float
    title: str
    evidence: list[dict[str, Any]]
    details: dict[str, Any]
    onset_at: datetime
    now: datetime
    key: str


def report(
    session: Session,
    seen: Observation,
    *,
    now: datetime,
    ctx: AuditContext | None = None,
) -> tuple[Finding, bool]:
    """Record what a detector saw; return the finding and whether it was opened just now.

    `ctx` names who reported it when a person did (an operator posting a tool's output): the
    audit record is theirs, the detector stays in the finding.

    Race-safe: concurrent reporters of one key end with one live finding, because the unique
    `active_key` refuses the second insert (inside a savepoint), which then bumps the first.
    """
    rep = _validate(seen, now)
    for _ in range(_ATTEMPTS):
        live = _live(session, rep.key)
        if live is not None:
            _bump(live, rep)
            session.flush()
            return live, False
        finding = _insert(session, rep)
        if finding is None:
            continue  # another reporter opened it first: bump theirs
        _audit_opened(session, ctx or detector_context(rep.detector), finding, rep)
        return finding, True
    raise ReportContended(f"finding key {rep.key!r} kept changing hands; report it again")


def _insert(session: Session, rep: _Report) -> Finding | None:
    """Open a finding for the report, or None when a concurrent reporter opened one first (the
    unique `active_key` refuses ours; the savepoint keeps the session usable)."""
    finding = _new(rep)
    try:
        with session.begin_nested():
            session.add(finding)
            session.flush()
    except IntegrityError:
        return None
    return finding


def _audit_opened(session: Session, ctx: AuditContext, finding: Finding, rep: _Report) -> None:
    """Audit the opening of a finding (its bumps are not audited: see the module docstring)."""
    audit.record(
        session,
        ctx,
        action="finding.create",
        entity_type="finding",
        entity_id=finding.id,
        after={
            "detector": rep.detector,
            "kind": rep.kind,
            "entity": f"{rep.entity_type}:{rep.entity}",
            "severity": rep.severity.value,
            "dedup_key": rep.key,
            "title": rep.title,
        },
    )


def _validate(seen: Observation, now: datetime) -> _Report:
    key = seen.dedup_key
    if key is None:
        key = default_key(seen.kind, seen.entity_type, seen.entity)
    names = {
        "kind": seen.kind,
        "detector": seen.detector,
        "entity_type": seen.entity_type,
        "entity": seen.entity,
    }
    for name, value in {**names, "dedup_key": key}.items():
        _check_key(name, value)
    onset_at = now if seen.onset_at is None else seen.onset_at
    for name, moment in (("onset_at", onset_at), ("now", now)):
        if moment.tzinfo is None:
            raise InvalidFinding(f"{name} must be timezone-aware (UTC), got naive {moment}")
    score, title, details = seen.score, seen.title, seen.details
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InvalidFinding(f"score must be a finite number, got {score!r}")
    if not isinstance(title, str) or not title.strip():
        raise InvalidFinding("title must not be empty")
    if not isinstance(details, Mapping):
        raise InvalidFinding(f"details must be a mapping, got {type(details).__name__}")
    return _Report(
        kind=seen.kind,
        detector=seen.detector,
        entity_type=seen.entity_type,
        entity=seen.entity,
        severity=parse_severity(seen.severity),
        score=float(score),
        title=title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…",
        evidence=[to_jsonable(dict(ref)) for ref in _checked_refs(seen.evidence)],
        details=to_jsonable(dict(details)),
        onset_at=onset_at,
        now=now,
        key=key,
    )


def _check_key(name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidFinding(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > _KEY_LIMITS[name]:
        raise InvalidFinding(
            f"{name} is {len(value)} characters long; at most {_KEY_LIMITS[name]} are allowed"
        )


def parse_status(value: str) -> FindingStatus:
    """The status named `value`, or InvalidFinding listing the valid ones."""
    try:
        return FindingStatus(value)
    except ValueError:
        valid = " | ".join(FindingStatus)
        raise InvalidFinding(f"status must be one of {valid}, got {value!r}") from None


def parse_severity(value: str) -> Severity:
    """The severity named `value`, or InvalidFinding listing the valid ones."""
    try:
        return Severity(value)
    except ValueError:
        valid = " | ".join(Severity)
        raise InvalidFinding(f"severity must be one of {valid}, got {value!r}") from None


def _checked_refs(evidence: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    if isinstance(evidence, str | bytes) or not isinstance(evidence, Sequence):
        raise InvalidFinding(f"evidence must be a list of refs, got {type(evidence).__name__}")
    for i, ref in enumerate(evidence):
        if not isinstance(ref, Mapping) or not isinstance(ref.get("type"), str) or not ref["type"]:
            raise InvalidFinding(f"evidence[{i}] must be a mapping with a `type`, got {ref!r}")
    return evidence


def _live(session: Session, key: str) -> Finding | None:
    """The live finding of `key`, locked (PostgreSQL) so concurrent bumps do not lose counts."""
    return session.scalar(
        select(Finding)
        .where(Finding.active_key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _new(rep: _Report) -> Finding:
    return Finding(
        kind=rep.kind,
        detector=rep.detector,
        entity_type=rep.entity_type,
        entity=rep.entity,
        severity=rep.severity.value,
        score=rep.score,
        title=rep.title,
        status=FindingStatus.OPEN.value,
        dedup_key=rep.key,
        active_key=rep.key,
        evidence=merge_evidence([], rep.evidence),
        details=rep.details,
        occurrences=1,
        onset_at=rep.onset_at,
        first_seen=rep.now,
        last_seen=rep.now,
        resolution="",
    )


def _bump(finding: Finding, rep: _Report) -> None:
    """Fold one more report into a live finding: counts grow, severity and score only rise."""
    current = Severity(finding.severity)
    if rep.severity.rank >= current.rank:
        finding.title = rep.title  # the worst report so far describes the problem best
    if rep.severity.rank > current.rank:
        finding.severity = rep.severity.value
    finding.score = max(finding.score, rep.score)
    finding.occurrences += 1
    finding.last_seen = max(finding.last_seen, rep.now)
    finding.onset_at = min(finding.onset_at, rep.onset_at)
    # New objects, not in-place edits: the JSON columns do not track mutation.
    finding.evidence = merge_evidence(finding.evidence, rep.evidence)
    finding.details = {**finding.details, **rep.details}


def merge_evidence(
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    *,
    limit: int = MAX_EVIDENCE,
) -> list[dict[str, Any]]:
    """Append `new` refs to `old`: no duplicates, newest last, at most `limit` (oldest dropped).

    A ref reported again moves to the end: it is current evidence, not history.
    """
    fresh = {canonical_json(ref): dict(ref) for ref in new}
    kept = [dict(ref) for ref in old if canonical_json(ref) not in fresh]
    return (kept + list(fresh.values()))[-limit:] if limit > 0 else []


# --- lifecycle --------------------------------------------------------------------------------


def auto_resolve(
    session: Session,
    *,
    detector: str,
    still_active_keys: Collection[str],
    now: datetime,
    quiet_for: timedelta,
) -> list[Finding]:
    """Resolve the detector's live findings that are no longer active and were quiet long enough.

    A finding is kept while its key is in `still_active_keys` or it was seen after
    `now - quiet_for` (so one quiet pass does not close a flapping problem).
    """
    cutoff = now - quiet_for
    active = set(still_active_keys)
    stale = session.execute(
        select(Finding.id, Finding.dedup_key).where(
            Finding.detector == detector,
            Finding.status.in_([s.value for s in LIVE]),
            Finding.last_seen < cutoff,
        )
    ).all()
    ids = sorted(i for i, key in stale if key not in active)
    ctx = detector_context(detector)
    resolved: list[Finding] = []
    for chunk in _chunks(ids, _CHUNK):
        # Locked and checked again: a report that bumped one meanwhile keeps it open.
        rows = session.scalars(
            select(Finding)
            .where(
                Finding.id.in_(chunk),
                Finding.status.in_([s.value for s in LIVE]),
                Finding.last_seen < cutoff,
            )
            .order_by(Finding.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for finding in rows:
            transition(
                session,
                finding,
                FindingStatus.RESOLVED,
                ctx=ctx,
                reason=AUTO_RESOLVE_REASON,
                now=now,
            )
            resolved.append(finding)
    return resolved


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def acknowledge(
    session: Session,
    ctx: AuditContext,
    *,
    finding_id: int,
    reason: str = "",
    now: datetime | None = None,
) -> Finding:
    """Say someone is on it; detectors keep bumping an acknowledged finding."""
    finding = _locked(session, finding_id)
    transition(
        session,
        finding,
        FindingStatus.ACKNOWLEDGED,
        ctx=ctx,
        reason=reason,
        now=now or utcnow(),
    )
    return finding


def resolve(
    session: Session,
    ctx: AuditContext,
    *,
    finding_id: int,
    reason: str,
    now: datetime | None = None,
) -> Finding:
    """Close a finding by hand (a reason is required); its key is free for a recurrence."""
    finding = _locked(session, finding_id)
    transition(
        session, finding, FindingStatus.RESOLVED, ctx=ctx, reason=reason, now=now or utcnow()
    )
    return finding


def _locked(session: Session, finding_id: int) -> Finding:
    finding = session.scalar(
        select(Finding)
        .where(Finding.id == finding_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if finding is None:
        raise FindingNotFound(f"finding {finding_id} not found")
    return finding


# --- queries ----------------------------------------------------------------------------------


def count_about(session: Session, *, entity_type: str, entity: str) -> int:
    """How many findings, in any status, were ever reported about one entity."""
    where = (Finding.entity_type == entity_type, Finding.entity == entity)
    return session.scalar(select(func.count()).select_from(Finding).where(*where)) or 0


def get(session: Session, finding_id: int) -> Finding | None:
    """The finding with this id, or None."""
    return session.get(Finding, finding_id)


def query(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    entity: str | None = None,
    severity: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Finding], int]:
    """One page of findings, newest first, and the total; `since` keeps those seen since then."""
    stmt = select(Finding).order_by(Finding.id.desc())
    if status:
        stmt = stmt.where(Finding.status == parse_status(status).value)
    if kind:
        stmt = stmt.where(Finding.kind == kind)
    if entity:
        stmt = stmt.where(Finding.entity == entity)
    if severity:
        stmt = stmt.where(Finding.severity == parse_severity(severity).value)
    if since:
        stmt = stmt.where(Finding.last_seen >= since)
    return paginate(session, stmt, limit=limit, offset=offset)


@dataclass(frozen=True)
class Counts:
    """For dashboards: findings by status (all), and live ones by severity."""

    by_status: dict[str, int]
    live_by_severity: dict[str, int]

    @property
    def live(self) -> int:
        return sum(self.live_by_severity.values())


def counts(session: Session) -> Counts:
    """Count findings by status, and live findings by severity (every key present, zeros too)."""
    rows = session.execute(
        select(Finding.status, Finding.severity, func.count()).group_by(
            Finding.status, Finding.severity
        )
    ).all()
    by_status = dict.fromkeys((s.value for s in FindingStatus), 0)
    by_severity = dict.fromkeys((s.value for s in Severity), 0)
    for status, severity, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        if status in LIVE:
            by_severity[severity] = by_severity.get(severity, 0) + n
    return Counts(by_status, by_severity)


def live_counts(session: Session) -> dict[str, int]:
    """Findings still open or acknowledged, by severity (every severity listed)."""
    rows = session.execute(
        select(Finding.severity, func.count())
        .where(Finding.status.in_([s.value for s in LIVE]))
        .group_by(Finding.severity)
    ).all()
    found = {severity: int(count) for severity, count in rows}
    return {s.value: found.get(s.value, 0) for s in Severity}
