"""Remediation rules on a real database: predictions and findings to changes, dry run first,
within each rule's budget and the device safety limits, with outcomes followed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.changes import service as changes
from fleetops.changes.enums import ChangeState
from fleetops.changes.operations import load_library
from fleetops.devices.enums import Lifecycle, Outcome, RemedyStatus, RuleMode, Source
from fleetops.devices.lifecycle.service import LifecycleConfig
from fleetops.devices.policy.rules import PolicyError
from fleetops.devices.remediation import service
from fleetops.devices.remediation.rules import (
    Remediation,
    load_remediation,
    parse_remediation,
)
from fleetops.devices.signals.exceptions import SignalError
from fleetops.devices.signals.ingest import parse_payload
from fleetops.devices.signals.service import report_signals
from fleetops.devices.states import current
from fleetops.inventory.apply import apply_document
from fleetops.models import AuditRecord, ChangeRequest, Host, RemediationAction
from fleetops.sim.fleet import generate

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ADMIN = AuditContext(actor="admin")
RULE = "drain-predicted-disk-failure"


def prediction(serial: str, score: float = 0.99, flagged: bool = True) -> dict[str, Any]:
    return {
        "serial_number": serial,
        "model": "ST3000DM001",
        "score": score,
        "predicted_failure": flagged,
        "horizon_days": 14,
    }


def predict(session: Session, host: str, *rows: dict[str, Any], now: datetime = NOW) -> None:
    signals = parse_payload(Source.DISK_PREDICTION, list(rows), host=host, now=now)
    report_signals(session, signals, now=now)
    session.flush()


@pytest.fixture
def fleet(session: Session) -> list[str]:
    apply_document(session, AuditContext(actor="test"), generate(hosts=40, racks=4))
    session.commit()
    return list(session.scalars(select(Host.hostname).order_by(Host.hostname)))


@pytest.fixture
def lifecycle() -> LifecycleConfig:
    return LifecycleConfig(library=load_library())


def host(session: Session, name: str) -> Host:
    found = session.scalar(select(Host).where(Host.hostname == name))
    assert found is not None
    return found


def test_predictions_become_one_finding_per_flagged_drive(
    session: Session, fleet: list[str]
) -> None:
    rows = [prediction("Z1"), prediction("Z2", 0.2, flagged=False), prediction("Z3", 0.95)]
    signals = parse_payload(Source.DISK_PREDICTION, rows, host=fleet[3], now=NOW)
    assert [(s.signature, s.component) for s in signals] == [
        ("disk_failure_predicted", "Z1"),
        ("disk_failure_predicted", "Z3"),
    ]
    assert "within 14 days" in signals[0].title
    with pytest.raises(SignalError, match=r"prediction 2: `score` must be a number"):
        parse_payload(Source.DISK_PREDICTION, [rows[0], {**rows[1], "score": "high"}],
                      host=fleet[3], now=NOW)  # fmt: skip
    with pytest.raises(SignalError, match="not JSON"):
        parse_payload(Source.DISK_PREDICTION, "[{", host=fleet[3], now=NOW)


def test_a_dry_run_records_what_it_would_do_within_the_budget(
    session: Session, fleet: list[str], lifecycle: LifecycleConfig
) -> None:
    remediation = load_remediation()
    chosen = [fleet[0], fleet[20], fleet[30]]  # three clusters' worth, a budget of two an hour
    for name in chosen:
        predict(session, name, prediction(f"S-{name}"))
    first = service.run_pass(session, remediation, now=NOW, lifecycle=lifecycle)
    assert [(a.mode, a.status, a.entity) for a in first] == [
        ("dry_run", "proposed", chosen[0]),
        ("dry_run", "proposed", chosen[1]),
        ("dry_run", "held", chosen[2]),
    ]
    assert "budget: 2 action(s) an hour" in first[2].reason
    assert first[0].plan == {
        "workflow": "isolate-host",
        "title": f"Isolate {fleet[0]}",
        "selector": fleet[0],
        "params": {},
        "repair": "replace",
    }
    assert session.scalar(select(ChangeRequest.id)) is None  # nothing submitted
    assert {current(session, host(session, n)) for n in chosen} == {Lifecycle.IN_SERVICE}
    again = service.run_pass(
        session, remediation, now=NOW + timedelta(minutes=5), lifecycle=lifecycle
    )
    assert [(a.status, a.entity) for a in again] == [("held", chosen[2])]  # not proposed twice
    later = NOW + timedelta(hours=2)  # the hour is over, but two hosts are still "out" a day
    assert [a.status for a in service.run_pass(session, remediation, now=later,
                                               lifecycle=lifecycle)] == ["held"]  # fmt: skip
    assert "2 host(s) out at once" in session.scalars(select(RemediationAction.reason)).all()[-1]
    assert session.scalar(select(AuditRecord).where(AuditRecord.action == "remediation.act"))


def test_enabled_it_drains_within_the_budget_and_follows_the_outcome(
    session: Session, fleet: list[str], lifecycle: LifecycleConfig
) -> None:
    remediation = load_remediation()
    chosen = [fleet[0], fleet[1], fleet[20]]  # two in one cluster of 20: 5 % of it is one
    for name in chosen:
        predict(session, name, prediction(f"S-{name}"))
    service.set_mode(session, ADMIN, remediation, RULE, RuleMode.ENABLED)
    acted = service.run_pass(session, remediation, now=NOW, lifecycle=lifecycle)
    assert [(a.mode, a.status) for a in acted] == [
        ("enabled", "submitted"),
        ("enabled", "held"),
        ("enabled", "submitted"),
    ]
    assert "cluster" in acted[1].reason  # the device safety limits hold it
    drained = [a for a in acted if a.status == RemedyStatus.SUBMITTED]
    for action in drained:
        assert current(session, host(session, action.entity)) is Lifecycle.DRAINING
        change = session.get(ChangeRequest, action.change_id)
        assert change is not None
        assert change.state == ChangeState.APPROVED.value  # standard
        assert action.outcome == Outcome.PENDING
    assert current(session, host(session, fleet[1])) is Lifecycle.IN_SERVICE
    # The change fails for one host and succeeds for the other; after the window: fixed.
    ok, bad = (session.get(ChangeRequest, a.change_id) for a in drained)
    assert ok is not None
    assert bad is not None
    end = NOW + timedelta(minutes=10)
    ok.state, ok.finished_at = ChangeState.SUCCEEDED.value, end
    bad.state, bad.finished_at = ChangeState.FAILED.value, end
    session.flush()
    assert service.follow(session, remediation, now=end) == 1
    assert (drained[1].outcome, drained[0].outcome) == ("failed", "pending")
    assert service.follow(session, remediation, now=end + timedelta(days=1, minutes=1)) == 1
    assert drained[0].outcome == "fixed"
    record = session.scalar(select(AuditRecord).where(AuditRecord.action == "remediation.mode"))
    assert record is not None
    assert record.after == {"mode": "enabled"}


def test_a_remedy_that_did_not_fix_it_says_so(
    session: Session, fleet: list[str], lifecycle: LifecycleConfig, tmp_path: Path
) -> None:
    site = tmp_path / "remediation.yaml"
    site.write_text(
        "rules:\n"
        "  - name: restart-datanode\n"
        "    kind: hardware_error\n"
        "    signature: disk_failure_predicted\n"
        "    action: restart_service\n"
        "    service: hadoop-hdfs-datanode.service\n"
        "    mode: enabled\n"
        "    verify_minutes: 30\n"
    )
    remediation = load_remediation(site)
    assert [r.name for r in remediation.rules] == [
        "restart-datanode",
        RULE,
        "release-reserve-before-full",
    ]
    predict(session, fleet[5], prediction("X1"))
    [action] = service.run_pass(session, remediation, now=NOW, lifecycle=lifecycle)
    change = session.get(ChangeRequest, action.change_id)
    assert change is not None
    assert change.state == ChangeState.PENDING_APPROVAL.value
    assert change.params == {"service": "hadoop-hdfs-datanode.service"}
    workflow = changes.workflow_of(session, change)
    assert workflow is not None
    assert workflow.name == "rolling-restart"
    change.state, change.finished_at = ChangeState.SUCCEEDED.value, NOW + timedelta(minutes=5)
    predict(session, fleet[5], prediction("X1"), now=NOW + timedelta(minutes=20))  # back again
    assert service.follow(session, remediation, now=NOW + timedelta(minutes=21)) == 1
    assert action.outcome == Outcome.NOT_FIXED


def test_a_disabled_rule_does_nothing_but_can_be_tested(
    session: Session, fleet: list[str], lifecycle: LifecycleConfig
) -> None:
    remediation = load_remediation()
    service.set_mode(session, ADMIN, remediation, RULE, RuleMode.DISABLED)
    predict(session, fleet[0], prediction("D1"))
    assert service.run_pass(session, remediation, now=NOW, lifecycle=lifecycle) == []
    [would] = service.propose(session, remediation, now=NOW, only=RULE)
    assert (would.mode, would.host, would.held) == (RuleMode.DRY_RUN, fleet[0], "")
    assert session.scalar(select(RemediationAction.id)) is None
    with pytest.raises(service.RuleNotFound):
        service.set_mode(session, ADMIN, remediation, "nope", RuleMode.ENABLED)


def test_a_disabled_rule_leaves_its_findings_to_the_next(
    session: Session, fleet: list[str], lifecycle: LifecycleConfig, tmp_path: Path
) -> None:
    site = tmp_path / "remediation.yaml"
    site.write_text(
        "rules:\n"
        "  - {name: restart-first, kind: hardware_error, signature: disk_failure_predicted,\n"
        "     action: restart_service, service: datanode.service, mode: disabled}\n"
    )
    remediation = load_remediation(site)
    predict(session, fleet[0], prediction("N1"))
    [would] = service.propose(session, remediation, now=NOW)
    assert would.rule == RULE  # the shipped drain, since the site's first rule is disabled
    [tested] = service.propose(session, remediation, now=NOW, only="restart-first")
    assert (tested.rule, tested.mode) == ("restart-first", RuleMode.DRY_RUN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - name: a\n    kind: k\n    action: reboot\n", ":4: rule 1 (a): `action`"),
        ("rules:\n  - name: a\n    kind: k\n    action: restart_service\n", "`service`"),
        (
            "rules:\n  - name: a\n    kind: k\n    action: restart_service\n"
            "    service: 'x; rm -rf /'\n",
            ":5: rule 1 (a): `service` is not a systemd unit name",
        ),
        ("rules:\n  - name: a\n    kind: k\n    action: drain\n    per_hour: -1\n", ":5:"),
        (
            "rules:\n  - {name: a, kind: k, action: drain}\n"
            "  - {name: a, kind: k, action: drain}\n",
            ":3: rule name 'a' is used twice",
        ),
        ("rules:\n  - name: A b\n    kind: k\n    action: drain\n", "`name` must be"),
        ("rules:\n  - {name: a, kind: k, action: drain, percent: 1}\n", "`percent` goes with"),
        ("rules:\n  - {name: a, kind: k, action: release_reserve, percent: 9}\n", "0 to 5"),
    ],
)
def test_a_wrong_rule_file_names_its_line(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=r"^site\.yaml:") as caught:
        parse_remediation(text, source="site.yaml")
    assert message in str(caught.value)


def test_the_shipped_rules_start_in_dry_run() -> None:
    shipped: Remediation = load_remediation()
    assert {r.mode for r in shipped.rules} == {RuleMode.DRY_RUN}


def fill_forecast(
    earliest: float | None, median: float | None, mount: str = "/data1"
) -> dict[str, Any]:
    return {
        "mount": mount,
        "last": {"timestamp": "2026-11-26T11:00:00+00:00", "value": 91.5},
        "days_until_full": {"capacity": 100.0, "level": 0.95, "median": median,
                            "earliest": earliest, "latest": None},
    }  # fmt: skip


def test_a_fill_forecast_within_two_weeks_is_a_finding(fleet: list[str]) -> None:
    [soon] = parse_payload(Source.FILL_FORECAST, fill_forecast(1.5, 4.0), host=fleet[0], now=NOW)
    assert (soon.signature, soon.severity, soon.component) == (
        "filesystem_fill_predicted",
        "critical",
        "/data1",
    )
    assert "predicted full in 4.0 days (at the earliest in 1.5)" in soon.title
    [later] = parse_payload(Source.FILL_FORECAST, fill_forecast(9, 20), host=fleet[0], now=NOW)
    assert later.severity == "warning"
    for calm in (fill_forecast(30, 40), fill_forecast(None, None)):
        assert parse_payload(Source.FILL_FORECAST, calm, host=fleet[0], now=NOW) == []
    for mount in ("data1", "/data1; rm -rf /", "/../etc"):
        with pytest.raises(SignalError, match="`mount` must be"):
            parse_payload(Source.FILL_FORECAST, fill_forecast(1, 2, mount), host=fleet[0], now=NOW)
    with pytest.raises(SignalError, match="--capacity"):
        parse_payload(Source.FILL_FORECAST, {"mount": "/data1"}, host=fleet[0], now=NOW)


def test_a_filling_data_disk_gets_its_reserve_back_through_a_reviewed_change(
    session: Session, fleet: list[str], lifecycle: LifecycleConfig
) -> None:
    remediation = load_remediation()
    rule = "release-reserve-before-full"
    signals = parse_payload(Source.FILL_FORECAST, fill_forecast(3, 6), host=fleet[4], now=NOW)
    report_signals(session, signals, now=NOW)
    [would] = service.propose(session, remediation, now=NOW)
    assert (would.rule, would.mode, would.held) == (rule, RuleMode.DRY_RUN, "")
    assert would.plan["params"] == {"mounts": "/data1", "percent": 1}
    service.set_mode(session, ADMIN, remediation, rule, RuleMode.ENABLED)
    [action] = service.run_pass(session, remediation, now=NOW, lifecycle=lifecycle)
    change = session.get(ChangeRequest, action.change_id)
    assert change is not None
    assert change.state == ChangeState.PENDING_APPROVAL.value  # medium risk: an operator looks
    assert change.params == {"mounts": "/data1", "percent": 1}
    workflow = changes.workflow_of(session, change)
    assert workflow is not None
    assert workflow.name == "release-reserved-blocks"
