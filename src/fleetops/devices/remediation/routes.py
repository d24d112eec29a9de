"""Remediation rules JSON API: the rules with their record, what one would do now, the actions
taken or proposed, and each rule's mode (admins only: enabling a rule lets it submit changes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from fleetops.auth.dependencies import Admin, SessionDep, Viewer, audit_context
from fleetops.devices.config import device_limits
from fleetops.devices.enums import RuleMode
from fleetops.devices.remediation import service
from fleetops.devices.remediation.rules import Remediation, RemediationRule
from fleetops.devices.remediation.schemas import (
    ActionPage,
    ActionRead,
    ModeBody,
    ProposalRead,
    RuleRead,
)
from fleetops.errors import ERROR_RESPONSES
from fleetops.kit.pagination import Limit, Offset, paginate
from fleetops.models import utcnow

router = APIRouter(prefix="/policies", tags=["remediation"], responses=ERROR_RESPONSES)
RuleName = Annotated[str, Path(max_length=64)]


def _remediation(request: Request) -> Remediation:
    found: Remediation = request.app.state.remediation
    return found


def rule_read(rule: RemediationRule, mode: RuleMode, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "name": rule.name,
        "description": rule.description,
        "kind": rule.kind,
        "signature": rule.signature,
        "min_severity": rule.min_severity.value if rule.min_severity else None,
        "action": rule.action,
        "repair": rule.repair,
        "service": rule.service,
        "mode": mode,
        "per_hour": rule.per_hour,
        "hosts_out": rule.hosts_out,
        "verify_minutes": int(rule.verify.total_seconds() // 60),
        "counts": counts,
    }


def rules_read(request: Request, session: SessionDep) -> list[dict[str, Any]]:
    remediation = _remediation(request)
    modes = service.modes(session, remediation)
    counts = service.counts(session)
    return [rule_read(r, modes[r.name], counts.get(r.name, {})) for r in remediation.rules]


@router.get("", response_model=list[RuleRead])
def list_rules(request: Request, session: SessionDep, _: Viewer) -> list[dict[str, Any]]:
    """Every remediation rule in order, with its mode, budget and what it did and proposed."""
    return rules_read(request, session)


@router.get("/actions", response_model=ActionPage)
def list_actions(
    session: SessionDep,
    _: Viewer,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    mode: RuleMode | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """What the rules did (enabled) and would have done (dry run), newest first."""
    rows, total = paginate(
        session, service.actions_query(rule=rule, mode=mode), limit=limit, offset=offset
    )
    items = [ActionRead.model_validate(r) for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{name}/test", response_model=list[ProposalRead])
def dry_run_rule(
    name: RuleName, request: Request, session: SessionDep, _: Viewer
) -> list[service.Proposal]:
    """What the rule would do now, whatever its mode; nothing is recorded or submitted."""
    settings = request.app.state.settings
    return service.propose(
        session,
        _remediation(request),
        now=utcnow(),
        caps=device_limits(settings).caps,
        only=name,
        isolation_workflow=settings.isolation_workflow,
    )


@router.put("/{name}/mode", response_model=RuleRead)
def set_mode(
    name: RuleName, body: ModeBody, request: Request, session: SessionDep, who: Admin
) -> dict[str, Any]:
    """Enable a rule (it submits changes), put it in dry run, or disable it; admins only,
    audited."""
    remediation = _remediation(request)
    mode = service.set_mode(session, audit_context(request, who), remediation, name, body.mode)
    rule = remediation.get(name)
    assert rule is not None
    return rule_read(rule, mode, service.counts(session).get(name, {}))
