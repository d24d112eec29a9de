"""The transition function on a real database: the graph, the named rules, history and audit."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.devices import service
from fleetops.devices.enums import Lifecycle
from fleetops.devices.states import ALLOWED, TransitionRefused
from fleetops.inventory import service as inventory
from fleetops.inventory.apply import apply_document
from fleetops.inventory.document import HostDoc, ImportFailed, InventoryDoc
from fleetops.inventory.schemas import HostCreate
from fleetops.models import AuditRecord, DeviceState, DeviceTransition, Host
from tests.devices.factory import add_hosts
from tests.findings.factory import report

L = Lifecycle
ALICE = AuditContext(actor="alice")
POLICY = AuditContext(actor="policy:disk-health")
LOOP = [L.SUSPECT, L.DRAINING, L.ISOLATED, L.IN_REPAIR, L.VERIFYING, L.IN_SERVICE]


def refused(session: Session, to: Lifecycle, **kw: object) -> TransitionRefused:
    args: dict[str, object] = {"hostname": "h001", "to": to, "reason": "test"} | kw
    ctx = args.pop("ctx", ALICE)
    assert isinstance(ctx, AuditContext)
    with pytest.raises(TransitionRefused) as caught:
        service.move(session, ctx, **args)  # type: ignore[arg-type]
    return caught.value


@pytest.fixture
def host(session: Session) -> Session:
    add_hosts(session, "h001", "h002")
    return session


def test_a_new_host_is_enrolled_and_one_without_a_row_is_in_service(host: Session) -> None:
    device = service.get(host, hostname="h001")
    assert device is not None
    assert (device.state, device.updated_by, device.next_states) == (
        L.IN_SERVICE,
        "test",
        [L.SUSPECT],
    )
    assert host.scalar(select(DeviceTransition)) is None  # enrolment is not a move
    # Hosts imported before the lifecycle was tracked have no row: they have been in service.
    host.execute(delete(DeviceState))
    host.expire_all()
    device = service.get(host, hostname="h001")
    assert device is not None
    assert (device.state, device.updated_by) == (L.IN_SERVICE, "")
    created = host.scalar(select(Host.created_at).where(Host.hostname == "h001"))
    assert device.since == created
    assert service.get(host, hostname="nope") is None


def test_the_inventory_state_is_the_device_state(host: Session) -> None:
    """Selectors (`state=in_service`) and host pages read `hosts.state`: it follows every move,
    and a host added in another state is a device in that state."""
    service.move(host, ALICE, hostname="h001", to=L.SUSPECT, reason="ECC warnings")
    assert host.scalar(select(Host.state).where(Host.hostname == "h001")) == "suspect"
    inventory.create_host(host, ALICE, HostCreate(hostname="h003", state="provisioning"))
    device = service.get(host, hostname="h003")
    assert device is not None
    assert (device.state, device.reason) == (L.PROVISIONING, "enrolled")
    service.move(host, ALICE, hostname="h003", to=L.VERIFYING, reason="racked and cabled")
    assert host.scalar(select(Host.state).where(Host.hostname == "h003")) == "verifying"


def test_an_import_moves_a_known_host_only_as_the_lifecycle_allows(host: Session) -> None:
    """Re-importing a file that names another state is a move by the importer, under the same
    rules as any other; one the rules refuse fails the import."""
    apply_document(host, ALICE, InventoryDoc(hosts=[HostDoc(hostname="h001", state="suspect")]))
    [moved] = host.scalars(select(DeviceTransition)).all()
    assert (moved.from_state, moved.to_state, moved.actor) == ("in_service", "suspect", "alice")
    assert moved.reason == "inventory import"
    jump = InventoryDoc(hosts=[HostDoc(hostname="h001", state="in_repair", line=7)])
    with pytest.raises(ImportFailed) as caught:
        apply_document(host, ALICE, jump)
    [issue] = caught.value.issues
    assert issue.line == 7
    assert "'h001': state suspect → in_repair refused" in issue.message
    assert "fleetops device transition" in issue.message
    device = service.get(host, hostname="h001")
    assert device is not None
    assert device.state is L.SUSPECT


def test_the_repair_loop_round_trip_is_recorded(host: Session) -> None:
    [finding] = [report(host, entity="h001")[0].id]
    for to in LOOP:
        actor = POLICY if to is L.SUSPECT else ALICE
        evidence = [finding] if to is L.SUSPECT else []
        service.move(host, actor, hostname="h001", to=to, reason=f"to {to}", evidence=evidence)
    host.commit()
    rows, total = service.history(host, hostname="h001", limit=100, offset=0)
    assert total == len(LOOP)
    assert [(t.from_state, t.to_state) for t in reversed(rows)] == list(
        zip([L.IN_SERVICE, *LOOP[:-1]], LOOP, strict=True)
    )
    assert rows[-1].actor == "policy:disk-health"
    assert rows[-1].evidence == [finding]
    audit = host.scalars(
        select(AuditRecord).where(AuditRecord.entity_type == "device").order_by(AuditRecord.id)
    ).all()
    assert [a.action for a in audit] == [f"device.{s}" for s in LOOP]
    assert {a.entity_id for a in audit} == {"h001"}
    assert audit[0].actor == "policy:disk-health"
    assert audit[0].after["evidence"] == [finding]
    assert audit[0].after["reason"] == "to suspect"
    device = service.get(host, hostname="h001")
    assert device is not None
    assert (device.state, device.reason, device.updated_by) == (
        L.IN_SERVICE,
        "to in_service",
        "alice",
    )


def test_cleared_suspicion_and_failed_verification_are_regular_steps(host: Session) -> None:
    for to in [L.SUSPECT, L.IN_SERVICE, L.SUSPECT, L.DRAINING, L.ISOLATED, L.IN_REPAIR]:
        service.move(host, ALICE, hostname="h001", to=to, reason="r")
    for to in [L.VERIFYING, L.IN_REPAIR, L.RETIRED]:
        service.move(host, ALICE, hostname="h001", to=to, reason="r")
    assert service.get(host, hostname="h001").state is L.RETIRED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "to"),
    [
        ([], L.DRAINING),
        ([], L.RETIRED),
        ([L.SUSPECT], L.ISOLATED),
        ([L.SUSPECT, L.DRAINING], L.IN_SERVICE),
    ],
)
def test_steps_off_the_graph_are_refused_by_allowed_step(
    host: Session, path: list[Lifecycle], to: Lifecycle
) -> None:
    for step in path:
        service.move(host, ALICE, hostname="h001", to=step, reason="r")
    error = refused(host, to)
    current = path[-1] if path else L.IN_SERVICE
    assert error.detail.startswith(f"AllowedStep: h001 is {current}; it cannot become {to}")
    assert error.extra == {
        "rule": "AllowedStep",
        "allowed": sorted(ALLOWED[current], key=list(L).index),
    }
    assert error.status_code == 409
    assert host.scalar(select(DeviceTransition)) is None or path


def test_reason_required_even_for_a_regular_step(host: Session) -> None:
    assert refused(host, L.SUSPECT, reason="  ").extra["rule"] == "ReasonRequired"
    assert refused(host, L.ISOLATED, reason="", override=True).detail == (
        "ReasonRequired: an override needs a reason (it is kept in the history and the audit log)"
    )


def test_override_jumps_anywhere_but_out_of_retired(host: Session) -> None:
    step = service.move(
        host, ALICE, hostname="h001", to=L.ISOLATED, reason="smoke from the PSU", override=True
    )
    assert (step.from_state, step.to_state, step.override) == ("in_service", "isolated", True)
    record = host.scalars(select(AuditRecord).where(AuditRecord.entity_type == "device")).one()
    assert record.action == "device.override"
    assert record.after["override"] is True
    service.move(host, ALICE, hostname="h001", to=L.RETIRED, reason="scrap", override=True)
    error = refused(host, L.IN_SERVICE, reason="oops", override=True)
    assert error.extra["rule"] == "RetiredIsFinal"
    assert error.extra["allowed"] == []
    assert refused(host, L.RETIRED).extra["rule"] == "RetiredIsFinal"


def test_policies_cannot_override(host: Session) -> None:
    error = refused(host, L.ISOLATED, ctx=POLICY, override=True)
    assert (
        error.detail
        == "OverrideIsManual: policy:disk-health may not override; overrides are for operators"
    )


def test_already_there(host: Session) -> None:
    assert (
        refused(host, L.IN_SERVICE, override=True).detail
        == "AlreadyThere: h001 is already in_service"
    )


def test_evidence_must_exist(host: Session) -> None:
    finding = report(host, entity="h001")[0].id
    error = refused(host, L.SUSPECT, evidence=[finding, 999_999, 999_998])
    assert error.detail == "EvidenceExists: no finding with id 999999, 999998"
    assert host.scalar(select(DeviceTransition)) is None
    step = service.move(
        host, ALICE, hostname="h001", to=L.SUSPECT, reason="disk", evidence=[finding, finding]
    )
    assert step.evidence == [finding]


def test_list_by_state_and_selector_with_counts(host: Session) -> None:
    add_hosts(host, "h003")
    service.move(host, ALICE, hostname="h002", to=L.SUSPECT, reason="r")
    service.move(host, ALICE, hostname="h003", to=L.SUSPECT, reason="r")
    rows, total = service.query(host, state=L.SUSPECT, limit=1, offset=0)
    assert (total, [d.hostname for d in rows]) == (2, ["h002"])
    rows, total = service.query(host, state=L.IN_SERVICE, limit=10, offset=0)
    assert [d.hostname for d in rows] == ["h001"]
    rows, total = service.query(host, selector="h00[2-3]", limit=10, offset=0)
    assert [(d.hostname, d.state) for d in rows] == [("h002", L.SUSPECT), ("h003", L.SUSPECT)]
    counts = service.counts(host)
    assert counts == {s.value: 0 for s in L} | {"in_service": 1, "suspect": 2}
    assert service.counts(host, selector="h001")["in_service"] == 1
    assert service.counts(host, selector="h001")["suspect"] == 0


def test_a_host_with_a_lifecycle_is_not_deleted_even_by_sql(host: Session) -> None:
    """Below the service's refusal the database itself keeps the history (RESTRICT)."""
    service.move(host, ALICE, hostname="h002", to=L.SUSPECT, reason="r")
    host.commit()
    host.delete(host.scalars(select(Host).where(Host.hostname == "h002")).one())
    with pytest.raises(IntegrityError):
        host.flush()
    host.rollback()
    assert host.scalar(select(DeviceTransition.to_state)) == "suspect"
    h002 = select(Host.id).where(Host.hostname == "h002").scalar_subquery()
    assert host.scalar(select(DeviceState.state).where(DeviceState.host_id == h002)) == "suspect"
