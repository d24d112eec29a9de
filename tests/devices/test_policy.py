"""The health policy on a real database: findings become suspicion within the safety limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory
from fleetops.devices import service
from fleetops.devices.enums import Lifecycle
from fleetops.devices.policy.rules import Action, Policy, PolicyError, load_policy, parse_policy
from fleetops.devices.policy.safety import Caps
from fleetops.devices.policy.service import Limits, apply, evaluate
from fleetops.devices.states import transition
from fleetops.devices.tasks import HealthPolicyTask
from fleetops.findings import service as findings
from fleetops.findings.schemas import Observation
from fleetops.inventory.apply import apply_document
from fleetops.models import AuditRecord, Finding, Host
from fleetops.sim.fleet import generate

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
L = Lifecycle
OPERATOR = AuditContext(actor="alice")
LIMITS = Limits()  # 40 hosts: the storm threshold is 5 % = 2 hosts


@pytest.fixture
def fleet(session: Session) -> list[str]:
    apply_document(session, AuditContext(actor="test"), generate(hosts=40, racks=4))
    session.commit()
    return list(session.scalars(select(Host.hostname).order_by(Host.hostname)))


@pytest.fixture
def policy() -> Policy:
    return load_policy()


def hw(session: Session, host: str, signature: str = "fs_error", **kw: Any) -> Finding:
    """A hardware-error finding as the error-signature detector reports it."""
    now = kw.pop("now", NOW)
    args: dict[str, Any] = {
        "kind": "hardware_error",
        "detector": "error-signatures",
        "entity_type": "host",
        "entity": host,
        "severity": "warning",
        "score": 1.0,
        "title": f"{host}: {signature} errors",
        "evidence": [{"type": "lines", "host": host}],
        "details": {"signature": signature, "count": 2},
        "onset_at": now - timedelta(minutes=5),
        "dedup_key": f"hardware_error:{signature}:host:{host}",
    } | kw
    finding, _ = findings.report(session, Observation(**args), now=now)
    session.flush()
    return finding


def run(session: Session, policy: Policy, limits: Limits = LIMITS, now: datetime = NOW) -> Any:
    decisions = evaluate(session, policy, now=now, limits=limits)
    applied = apply(session, decisions, now=now)
    session.commit()
    return decisions, applied


def state(session: Session, host: str) -> Lifecycle:
    device = service.get(session, hostname=host)
    assert device is not None
    return device.state


def test_a_filesystem_finding_makes_its_host_suspect(
    session: Session, fleet: list[str], policy: Policy
) -> None:
    host = fleet[0]
    finding = hw(session, host)
    decisions, applied = run(session, policy)
    assert [d.hostname for d in decisions.suspect] == [host]
    assert decisions.storm is None
    assert [t.to_state for t in applied.moved] == [L.SUSPECT]
    assert state(session, host) is L.SUSPECT
    rows, _ = service.history(session, hostname=host, limit=10, offset=0)
    [step] = rows
    assert (step.actor, step.evidence) == ("policy:filesystem-errors", [finding.id])
    audit = session.scalar(
        select(AuditRecord).where(
            AuditRecord.action == "device.suspect", AuditRecord.entity_id == host
        )
    )
    assert audit is not None
    assert audit.actor == "policy:filesystem-errors"
    assert audit.after["evidence"] == [finding.id]
    # The next pass sees the host suspect already: nothing moves twice.
    again, applied = run(session, policy)
    assert (again.suspect, again.isolate, again.cleared, applied.moved) == ([], [], [], [])
    # Once no open finding supports the suspicion, the policy clears it.
    findings.resolve(session, OPERATOR, finding_id=finding.id, reason="fsck was clean")
    cleared, applied = run(session, policy)
    assert cleared.cleared == [host]
    assert [t.to_state for t in applied.moved] == [L.IN_SERVICE]
    assert state(session, host) is L.IN_SERVICE


def test_ignore_rules_and_unmatched_findings_move_nobody(
    session: Session, fleet: list[str], policy: Policy
) -> None:
    hw(session, fleet[0], "oom", severity="critical")
    hw(session, fleet[1], "edac_ce")  # 1 occurrence; the rule wants 3 within a day
    hw(session, fleet[2], "fs_error", now=NOW - timedelta(hours=2))  # outside the hour
    findings.report(
        session,
        Observation(
            kind="slow_link",
            detector="link-tomography",
            entity_type="switch",
            entity="tor-1",
            severity="critical",
            score=1.0,
            title="tor",
            evidence=[],
            details={},
            onset_at=NOW,
        ),
        now=NOW,
    )
    decisions, applied = run(session, policy)
    assert [(d.hostname, d.action, d.rule) for d in decisions.ignored] == [
        (fleet[0], Action.IGNORE, "oom-is-workload")
    ]
    assert (decisions.suspect, decisions.deferred, applied.moved) == ([], [], [])
    assert all(state(session, h) is L.IN_SERVICE for h in fleet[:3])
    # Corrected memory errors that keep coming back do count.
    for minute in (10, 20):
        hw(session, fleet[1], "edac_ce", now=NOW + timedelta(minutes=minute))
    decisions, _ = run(session, policy, now=NOW + timedelta(minutes=30))
    assert [(d.hostname, d.rule) for d in decisions.suspect] == [
        (fleet[1], "corrected-memory-errors")
    ]


def test_hosts_not_in_service_are_skipped(
    session: Session, fleet: list[str], policy: Policy
) -> None:
    host = fleet[5]
    service.move(session, OPERATOR, hostname=host, to=L.SUSPECT, reason="by hand")
    service.move(session, OPERATOR, hostname=host, to=L.DRAINING, reason="by hand")
    hw(session, host)
    decisions, applied = run(session, policy)
    assert (decisions.skipped, decisions.suspect, applied.moved) == ([host], [], [])
    assert state(session, host) is L.DRAINING


def test_max_per_hour_caps_automatic_suspicions(
    session: Session, fleet: list[str], policy: Policy
) -> None:
    limits = Limits(max_per_hour=2, storm_hosts=10, storm_fraction=1.0)
    for host in fleet[:2]:
        hw(session, host)
    _, applied = run(session, policy, limits)
    assert len(applied.moved) == 2
    for host in fleet[2:5]:
        hw(session, host, now=NOW + timedelta(minutes=10))
    later = NOW + timedelta(minutes=20)
    decisions, applied = run(session, policy, limits, now=later)
    assert (decisions.suspect, len(decisions.deferred), applied.moved) == ([], 3, [])
    # An hour after the first two, the budget is back.
    decisions, applied = run(session, policy, limits, now=NOW + timedelta(minutes=61))
    assert len(applied.moved) == 2
    assert [d.hostname for d in decisions.deferred] == [fleet[4]]
    assert [state(session, h) for h in fleet[:5]] == [L.SUSPECT] * 4 + [L.IN_SERVICE]


def test_a_storm_moves_nobody_and_raises_one_fleet_storm(
    session: Session, fleet: list[str], policy: Policy
) -> None:
    hosts = fleet[:3]  # 3 of 40 is 7.5 % > 5 %
    ids = [hw(session, h).id for h in hosts]
    decisions, applied = run(session, policy)
    assert decisions.storm is not None
    assert (decisions.suspect, applied.moved) == ([], [])
    assert decisions.storm.threshold == 2
    assert all(state(session, h) is L.IN_SERVICE for h in fleet)
    storms = session.scalars(select(Finding).where(Finding.kind == "fleet_storm")).all()
    [storm] = storms
    assert (storm.entity_type, storm.entity, storm.severity, storm.detector) == (
        "fleet",
        "fleet",
        "critical",
        "health-policy",
    )
    assert storm.details["hosts"] == hosts
    assert [ref["id"] for ref in storm.evidence] == ids
    # While the storm finding is live the policy moves nobody, even once the storm has shrunk.
    for finding_id in ids[1:]:
        findings.resolve(session, OPERATOR, finding_id=finding_id, reason="cable fixed")
    decisions, applied = run(session, policy)
    assert (decisions.halted, applied.moved, len(decisions.deferred)) == (True, [], 1)
    assert session.scalar(select(Finding.occurrences).where(Finding.id == storm.id)) == 1
    # A human resolving the storm hands control back.
    findings.resolve(session, OPERATOR, finding_id=storm.id, reason="checked, real faults")
    _, applied = run(session, policy)
    assert [t.evidence for t in applied.moved] == [[ids[0]]]


def test_repeated_cleared_suspicion_escalates(
    session: Session, fleet: list[str], policy: Policy
) -> None:
    host = fleet[7]
    row = session.scalars(select(Host).where(Host.hostname == host)).one()
    for day in (3, 2):
        at = NOW - timedelta(days=day)
        finding = hw(session, host, now=at)
        _, applied = run(session, policy, now=at)
        assert len(applied.moved) == 1
        cleared = at + timedelta(hours=1)
        transition(session, row, L.IN_SERVICE, ctx=OPERATOR, reason="not the disk", now=cleared)
        findings.resolve(session, OPERATOR, finding_id=finding.id, reason="cleared", now=cleared)
        session.commit()
    hw(session, host)
    decisions, applied = run(session, policy)
    [decision] = decisions.isolate  # the third time, suspicion escalates to isolation
    assert (decision.escalate, decision.action) == (True, Action.ISOLATE)
    assert "escalate" in decision.reason
    assert len(applied.moved) == 1  # without the lifecycle (no change engine) it stops at suspect


BAD = """\
rules:
  - name: ok
    kind: hardware_error
    action: suspect
    window_minutes: 10
    count: 1
  - name: broken
    kind: hardware_error
    action: drain
    window_minutes: 10
    count: 1
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BAD, "site.yaml:9: rule 2 (broken): `action` must be one of isolate | suspect | ignore"),
        (
            BAD.replace("count: 1\n  - name: broken", "count: 0\n  - name: broken"),
            "site.yaml:6: rule 1 (ok): `count` must be a whole number of at least 1, got 0",
        ),
        (
            BAD.replace("    action: drain", "    action: ignore\n    colour: red"),
            "site.yaml:7: rule 2 (broken): unknown keys colour",
        ),
        ("rules:\n  - name: x\n    kind: [unclosed\n", "site.yaml:3: invalid YAML"),
        ("rule: []\n", "site.yaml:1: expected a mapping with a `rules:` list"),
        (
            BAD.replace("    action: drain", "    action: isolate\n    repair: pray"),
            "site.yaml:10: rule 2 (broken): `repair` must be one of reboot | reimage | replace",
        ),
        (
            BAD.replace("    action: drain", "    action: suspect\n    repair: replace"),
            "site.yaml:10: rule 2 (broken): `repair` only goes with `action: isolate`",
        ),
        (
            BAD.replace("broken", "ok").replace("drain", "ignore"),
            "site.yaml:7: rule name 'ok' is used twice",
        ),
    ],
)
def test_bad_policy_yaml_names_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}:{expected.removeprefix('site.yaml:')}"), str(
        caught.value
    )


def test_a_failing_disk_is_isolated_for_replacement(
    session: Session, fleet: list[str], policy: Policy
) -> None:
    hw(session, fleet[0], "smart_failing", severity="critical")
    hw(session, fleet[1], "disk_io")
    decisions, _ = run(session, policy, Limits(caps=Caps(rack=1.0, cluster=1.0)))
    assert [(d.hostname, d.action, d.rule, d.repair) for d in decisions.isolate] == [
        (fleet[0], Action.ISOLATE, "smart-failing", "replace"),
        (fleet[1], Action.ISOLATE, "disk-io-errors", None),
    ]
    # Two of a 40-host fleet's smaller cluster would be more than its 5 %: one waits, suspect.
    decisions, _ = run(session, policy)
    assert len(decisions.isolate) + len(decisions.held) == 2


def test_one_forged_log_line_does_not_drain_a_host(
    session: Session, fleet: list[str], policy: Policy, tmp_path: Path
) -> None:
    """One line claiming a machine check (anyone allowed to send lines can write one) makes the
    host suspect, not isolated; a repeat, or a reading that is not a log line, isolates."""
    limits = Limits(storm_fraction=1.0, caps=Caps(rack=1.0, cluster=1.0))
    hw(session, fleet[0], "mce", severity="critical", details={"signature": "mce", "count": 1})
    hw(session, fleet[1], "mce", severity="critical", details={"signature": "mce", "count": 2})
    hw(session, fleet[2], "smart_failing", detector="smart",
       details={"signature": "smart_failing", "count": 1})  # fmt: skip
    decisions, _ = run(session, policy, limits)
    assert [(d.hostname, d.rule) for d in decisions.isolate] == [
        (fleet[1], "machine-check"),
        (fleet[2], "smart-failing"),
    ]
    assert [(d.hostname, d.rule) for d in decisions.suspect] == [
        (fleet[0], "machine-check-uncorroborated")
    ]
    assert state(session, fleet[0]) is L.SUSPECT
    # A site that trusts its senders says so, per rule.
    site = tmp_path / "site.yaml"
    site.write_text(
        "rules:\n  - {name: machine-check, kind: hardware_error, signature: mce,"
        " action: isolate, window_minutes: 60, count: 1, corroborate: 1}\n"
    )
    trusting = load_policy(site)
    [finding] = session.scalars(
        select(Finding).where(Finding.entity == fleet[0], Finding.kind == "hardware_error")
    )
    assert trusting.decide(finding, NOW).action is Action.ISOLATE  # type: ignore[union-attr]
    with pytest.raises(PolicyError, match="corroborate"):
        parse_policy(
            "rules:\n  - {name: x, kind: k, action: isolate, window_minutes: 1, count: 1,"
            " corroborate: 0}\n"
        )


def test_caps_hold_isolation_per_rack_cluster_and_hour(
    session: Session, fleet: list[str], policy: Policy
) -> None:
    limits = Limits(storm_fraction=1.0, caps=Caps(rack=1.0, cluster=1.0, per_hour=2))
    for host in fleet[:3]:
        hw(session, host, "disk_io")
    decisions, _ = run(session, policy, limits)
    assert [d.hostname for d in decisions.isolate] == fleet[:2]
    assert decisions.held == {fleet[2]: "hourly limit of 2 automatic isolations reached"}
    assert [d.hostname for d in decisions.suspect] == [fleet[2]]  # watched while it waits
    rack = Limits(storm_fraction=1.0, caps=Caps(rack=0.01, cluster=1.0, per_hour=100))
    hosts = session.scalars(select(Host).where(Host.hostname.in_(fleet[:3]))).all()
    same_rack = [h.hostname for h in hosts if h.rack_id == hosts[0].rack_id]
    held = evaluate(session, policy, now=NOW, limits=rack).held
    assert all("out of service; the limit is 1% = 1" in why for why in held.values())
    assert set(held) >= set(same_rack[1:])


def test_a_site_rule_comes_first_and_replaces_a_builtin(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "rules:\n"
        "  - {name: disk-io-errors, kind: hardware_error, signature: disk_io,"
        " action: ignore, window_minutes: 5, count: 1}\n"
        "  - {name: flaky-nic, kind: slow_link, min_severity: critical,"
        " action: suspect, window_minutes: 5, count: 1}\n"
    )
    policy = load_policy(path)
    names = [r.name for r in policy.rules]
    assert names[:2] == ["disk-io-errors", "flaky-nic"]
    assert names.count("disk-io-errors") == 1
    assert policy.rules[0].action is Action.IGNORE
    assert parse_policy("rules: []") == []


def test_the_task_runs_passes_in_its_own_transactions(db_url: str, policy: Policy) -> None:
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        apply_document(session, AuditContext(actor="test"), generate(hosts=40, racks=4))
        first = session.scalars(select(Host.hostname).order_by(Host.hostname)).first()
        assert first is not None
        hw(session, first)
        session.commit()
    task = HealthPolicyTask(sessions, policy, interval=0.05, clock=lambda: NOW)

    async def two_passes() -> None:
        runner = asyncio.create_task(task.run_forever())
        await asyncio.sleep(0.5)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(two_passes())
    with sessions() as session:
        suspects, total = service.query(session, state=L.SUSPECT, limit=10, offset=0)
        assert total == 1
        _, moves = service.history(session, hostname=suspects[0].hostname, limit=10, offset=0)
        assert moves == 1
    engine.dispose()
