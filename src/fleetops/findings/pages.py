"""The web UI of findings: the list with counts and filters, the detail with its evidence.

Every evidence ref becomes a link to the page that shows it (log lines, a metric window, another
finding), so an operator goes from "what is wrong" to "why we think so" in one click. Forms post
with the session's CSRF token; a refusal is shown on the finding's page, not as a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleetops.audit.service import AuditContext
from fleetops.auth.dependencies import Principal, SessionDep
from fleetops.auth.roles import Role
from fleetops.dashboard.render import PageUser, form_action, pager, pretty_json
from fleetops.dashboard.render import page as render_page
from fleetops.errors import AppError
from fleetops.findings import service
from fleetops.findings.enums import FindingStatus, Severity
from fleetops.findings.exceptions import FindingNotFound
from fleetops.findings.routes import FindingId
from fleetops.kit.pagination import MAX_OFFSET
from fleetops.models import Finding

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (25, 50, 100, 250)
DEFAULT_LIMIT = 50
ACTIONS = ("ack", "resolve")
# What a redirect after a successful form says: a fixed text per action, never from the URL.
DONE = {"ack": "Acknowledged: the finding stays live until it is resolved.", "resolve": "Resolved."}
TONES = {
    "info": "info",
    "warning": "warn",
    "critical": "bad",
    "open": "bad",
    "acknowledged": "warn",
    "resolved": "ok",
}


def tone(value: str) -> str:
    """The badge colour of a severity or status."""
    return TONES.get(value, "muted")


@dataclass(frozen=True)
class EvidenceView:
    """One evidence ref as the page shows it: a link when its type is known, JSON otherwise."""

    type: str
    label: str
    href: str | None
    raw: str


def _text(ref: dict[str, Any], key: str) -> str | None:
    value = ref.get(key)
    return value if isinstance(value, str) and value else None


def evidence_view(ref: Any) -> EvidenceView:
    """Turn a ref into the link that opens its evidence (unknown or malformed refs stay JSON)."""
    raw = pretty_json(ref)
    if not isinstance(ref, dict):
        return EvidenceView("unknown", "", None, raw)
    kind = str(ref.get("type", "unknown"))
    span = (_text(ref, "from"), _text(ref, "to"))
    when = f"{span[0]} – {span[1]}"
    template = ref.get("template_id")
    host = _text(ref, "host")
    if kind == "lines" and (host or template not in (None, "")) and all(span):
        query = {"host": host, "from": span[0], "to": span[1], "template": template}
        query["q"] = _text(ref, "query")
        label = f"log lines on {host}, {when}" if host else f"log lines, {when}"
        if template not in (None, ""):
            label += f", template {template}"
        return EvidenceView(kind, label, _with_query("/logs/search", query), raw)
    if kind == "window" and (metric := _text(ref, "metric")) and (entity := _text(ref, "entity")):
        if all(span):
            query = {"entity": entity, "from": span[0], "to": span[1]}
            href = _with_query(f"/diagnosis/{quote(metric, safe='')}", query)
            return EvidenceView(kind, f"{metric} of {entity}, {when}", href, raw)
    if kind == "finding":
        target = ref.get("id")
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        if isinstance(target, int) and not isinstance(target, bool) and 0 < target <= MAX_OFFSET:
            return EvidenceView(kind, f"finding #{target}", f"/findings/{target}", raw)
    return EvidenceView(kind, "", None, raw)


def _with_query(path: str, query: dict[str, Any]) -> str:
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def page(
    request: Request, name: str, who: Principal, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return render_page(request, name, who, status_code, tone=tone, **context)


def _kinds(session: Session) -> list[str]:
    return list(session.scalars(select(Finding.kind).distinct().order_by(Finding.kind)))


# --- list -------------------------------------------------------------------------------------


@router.get("/findings", response_class=HTMLResponse)
def finding_list(
    request: Request,
    session: SessionDep,
    who: PageUser,
    status: Annotated[str, Query(max_length=16)] = "",
    kind: Annotated[str, Query(max_length=64)] = "",
    severity: Annotated[str, Query(max_length=16)] = "",
    entity: Annotated[str, Query(max_length=255)] = "",
    limit: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """Findings newest first, filtered by status, kind, severity and entity (all in the URL).

    The filter form sends empty values for "any"; an unknown value is a 422 naming the valid ones.
    """
    kind, entity = kind.strip(), entity.strip()
    status = service.parse_status(status).value if status else ""
    severity = service.parse_severity(severity).value if severity else ""
    rows, total = service.query(
        session,
        status=status or None,
        kind=kind or None,
        severity=severity or None,
        entity=entity or None,
        limit=limit,
        offset=offset,
    )
    params = {
        "status": status,
        "kind": kind,
        "severity": severity,
        "entity": entity,
        "limit": limit if limit != DEFAULT_LIMIT else "",
    }
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return page(
        request,
        "findings/list.html",
        who,
        findings=rows,
        total=total,
        counts=service.counts(session),
        filtered=bool(status or kind or severity or entity),
        status=status,
        kind=kind,
        severity=severity,
        entity=entity,
        kinds=_kinds(session),
        statuses=list(FindingStatus),
        severities=list(Severity),
        limit=limit,
        params=params,
        pager=pager(total, limit, offset),
        page_sizes=PAGE_SIZES,
        operator=who.can(Role.OPERATOR),
        back=_drop_done(here),
        flash=("ok", DONE[done]) if done in DONE else None,
    )


# --- detail -----------------------------------------------------------------------------------


def _detail(
    request: Request,
    session: Session,
    who: Principal,
    finding_id: int,
    *,
    flash: tuple[str, str] | None = None,
    reason: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    finding = service.get(session, finding_id)
    if finding is None:
        raise FindingNotFound(f"finding {finding_id} not found")
    return page(
        request,
        "findings/detail.html",
        who,
        status_code=status_code,
        finding=finding,
        evidence=[evidence_view(ref) for ref in reversed(finding.evidence)],
        operator=who.can(Role.OPERATOR),
        back=f"/findings/{finding_id}",
        flash=flash,
        reason=reason,
    )


@router.get("/findings/{finding_id}", response_class=HTMLResponse)
def finding_detail(
    request: Request,
    finding_id: FindingId,
    session: SessionDep,
    who: PageUser,
    done: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """A finding: what, on which entity, since when, its evidence as links, and its actions."""
    flash = ("ok", DONE[done]) if done in DONE else None
    return _detail(request, session, who, finding_id, flash=flash)


# --- actions ----------------------------------------------------------------------------------


@router.post("/findings/{finding_id}/action", response_class=HTMLResponse)
def finding_action(
    request: Request,
    finding_id: FindingId,
    who: PageUser,
    action: Annotated[str, Form(pattern=f"^({'|'.join(ACTIONS)})$")],
    reason: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(max_length=2048)] = "",
    csrf: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Acknowledge or resolve from a page, then go back to it (POST-redirect-GET)."""
    reason = reason.strip()

    def act(session: Session, ctx: AuditContext) -> None:
        if action == "ack":
            service.acknowledge(session, ctx, finding_id=finding_id, reason=reason)
        else:
            service.resolve(session, ctx, finding_id=finding_id, reason=reason)

    def refused(session: Session, exc: AppError) -> Response:
        flash = ("bad", exc.detail)
        return _detail(
            request,
            session,
            who,
            finding_id,
            flash=flash,
            reason=reason,
            status_code=exc.status_code,
        )

    return form_action(
        request,
        who,
        csrf=csrf,
        act=act,
        done=_with_done(_safe_back(back, finding_id), action),
        refused=refused,
        needs=action,
    )


def _safe_back(back: str, finding_id: int) -> str:
    """Return to a findings page the form came from; anything else goes to the finding itself."""
    parts = urlsplit(back)
    local = not (parts.scheme or parts.netloc) and back.startswith("/findings")
    clean = "\\" not in back and all(0x20 <= ord(c) != 0x7F for c in back)
    return back if local and clean else f"/findings/{finding_id}"


def _drop_done(target: str) -> str:
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "done"]
    return parts.path + (f"?{urlencode(query)}" if query else "")


def _with_done(target: str, action: str) -> str:
    target = _drop_done(target)
    return f"{target}{'&' if '?' in target else '?'}done={action}"
