"""Global guardrails, checked at execution time for every change, whoever submitted it.

A batch starts only when all of its hosts can be leased at once: no other change holds them
(mutual exclusion), no freeze window is active, the fleet-wide concurrency limit has room, and the
out-of-service budget of every rack and cluster the batch touches still holds with the batch added.
Otherwise the change waits and says why.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fleetops.models import ChangeRequest, Cluster, FreezeWindow, Host, HostLease, Rack


@dataclass(frozen=True)
class Budget:
    rack: float  # max fraction of a rack's hosts leased at once
    cluster: float
    max_hosts: int  # fleet-wide


def active_freeze(session: Session, now: datetime) -> FreezeWindow | None:
    return session.scalar(
        select(FreezeWindow)
        .where(FreezeWindow.starts_at <= now, FreezeWindow.ends_at > now)
        .limit(1)
    )


def try_lease(
    session: Session, change: ChangeRequest, host_ids: list[int], budget: Budget, now: datetime
) -> str | None:
    """Lease the hosts for `change` and return None, or return why the batch must wait.

    The caller holds the write lock (SQLite write transaction, PostgreSQL advisory lock), so the
    check and the insert are one atomic step across all running changes.
    """
    if not change.emergency and (freeze := active_freeze(session, now)):
        return f"freeze window {freeze.name!r} until {freeze.ends_at:%Y-%m-%d %H:%M} UTC"
    held = dict(
        session.execute(
            select(HostLease.host_id, HostLease.change_id).where(HostLease.host_id.in_(host_ids))
        ).all()
    )
    if others := sorted({c for c in held.values() if c != change.id}):
        return f"hosts held by change(s) {', '.join(map(str, others))}"
    wanted = [h for h in host_ids if h not in held]
    if not wanted:
        return None
    leased = session.scalar(select(func.count()).select_from(HostLease)) or 0
    if leased + len(wanted) > budget.max_hosts:
        return f"fleet-wide limit: {leased} hosts busy, limit {budget.max_hosts}"
    if why := _domain_budget(session, wanted, budget):
        return why
    session.add_all(HostLease(host_id=h, change_id=change.id, acquired_at=now) for h in wanted)
    session.flush()
    return None


def _domain_budget(session: Session, wanted: list[int], budget: Budget) -> str | None:
    rows = session.execute(
        select(Host.id, Host.rack_id, Host.cluster_id).where(Host.id.in_(wanted))
    ).all()
    for column, fraction, label in (
        (Host.rack_id, budget.rack, "rack"),
        (Host.cluster_id, budget.cluster, "cluster"),
    ):
        index = 1 if label == "rack" else 2
        adding: Counter[int] = Counter()
        for row in rows:
            domain_id: int | None = row[index]
            if domain_id is not None:
                adding[domain_id] += 1
        for domain, extra in adding.items():
            size = session.scalar(select(func.count()).where(column == domain)) or 0
            out = (
                session.scalar(
                    select(func.count())
                    .select_from(HostLease)
                    .join(Host, Host.id == HostLease.host_id)
                    .where(column == domain)
                )
                or 0
            )
            allowed = max(1, math.floor(size * fraction + 1e-9))
            if out + extra > allowed:
                name = _domain_name(session, label, domain)
                why = (
                    f"out-of-service budget: {label} {name} has {out}/{size} hosts out, "
                    f"this batch adds {extra}, budget {fraction:.0%} = {allowed}"
                )
                if extra > allowed:
                    why += " (the batch alone exceeds it: lower the batch size or raise the budget)"
                return why
    return None


def _domain_name(session: Session, label: str, domain: int) -> str:
    if label == "rack":
        return session.scalar(select(Rack.name).where(Rack.id == domain)) or str(domain)
    return session.scalar(select(Cluster.name).where(Cluster.id == domain)) or str(domain)


def release(session: Session, change: ChangeRequest, host_ids: list[int] | None = None) -> None:
    """Give hosts back (all of the change's when `host_ids` is None)."""
    stmt = delete(HostLease).where(HostLease.change_id == change.id)
    if host_ids is not None:
        stmt = stmt.where(HostLease.host_id.in_(host_ids))
    session.execute(stmt)
