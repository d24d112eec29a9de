"""Safety limits on automatic isolation: how much of a rack and of a cluster may be out of service.

A device counts as out of service from the moment its drain starts until it serves again:
draining, isolated, in repair or verifying. The limits are checked before the policy submits an
isolation, host by host, against the counts as they stand plus the hosts already admitted in the
same pass, inside the pass's transaction, so two passes cannot both take the last slot. The change
engine's out-of-service budget (leases) applies on top, for the drain itself.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetops.devices.enums import Lifecycle
from fleetops.devices.states import POLICY_PREFIX
from fleetops.models import Cluster, DeviceTransition, Host, Rack

L = Lifecycle
OUT_OF_SERVICE = (L.DRAINING, L.ISOLATED, L.IN_REPAIR, L.VERIFYING)


@dataclass(frozen=True)
class Caps:
    """At most `rack` of a rack's and `cluster` of a cluster's hosts out of service (at least one
    host each), and at most `per_hour` automatic isolations in any hour."""

    rack: float = 0.20
    cluster: float = 0.05
    per_hour: int = 10

    @staticmethod
    def allowed(size: int, fraction: float) -> int:
        return max(1, math.floor(size * fraction + 1e-9))


@dataclass
class OutOfService:
    """Counts of out-of-service devices per rack and cluster, updated as a pass admits hosts."""

    caps: Caps
    rack_size: dict[int, int]
    cluster_size: dict[int, int]
    rack_out: Counter[int] = field(default_factory=Counter)
    cluster_out: Counter[int] = field(default_factory=Counter)
    names: dict[tuple[str, int], str] = field(default_factory=dict)
    isolations_left: int = 0

    @classmethod
    def load(cls, session: Session, caps: Caps, *, since: datetime) -> OutOfService:
        rack_size: dict[int, int] = dict(
            session.execute(  # type: ignore[arg-type]
                select(Host.rack_id, func.count())
                .where(Host.rack_id.is_not(None))
                .group_by(Host.rack_id)
            ).all()
        )
        cluster_size: dict[int, int] = dict(
            session.execute(  # type: ignore[arg-type]
                select(Host.cluster_id, func.count())
                .where(Host.cluster_id.is_not(None))
                .group_by(Host.cluster_id)
            ).all()
        )
        out = OutOfService(caps, rack_size, cluster_size)
        rows = session.execute(
            select(Host.rack_id, Host.cluster_id).where(
                Host.state.in_([s.value for s in OUT_OF_SERVICE])
            )
        ).all()
        for rack_id, cluster_id in rows:
            if rack_id is not None:
                out.rack_out[rack_id] += 1
            if cluster_id is not None:
                out.cluster_out[cluster_id] += 1
        out.names = {("rack", i): n for i, n in session.execute(select(Rack.id, Rack.name))}
        out.names |= {
            ("cluster", i): n for i, n in session.execute(select(Cluster.id, Cluster.name))
        }
        done = session.scalar(
            select(func.count())
            .select_from(DeviceTransition)
            .where(
                DeviceTransition.actor.startswith(POLICY_PREFIX, autoescape=True),
                DeviceTransition.to_state == L.DRAINING.value,
                DeviceTransition.at >= since,
            )
        )
        out.isolations_left = max(0, caps.per_hour - (done or 0))
        return out

    def refuse(self, host: Host) -> str | None:
        """Why isolating `host` now would break a limit, or None."""
        if self.isolations_left <= 0:
            return f"hourly limit of {self.caps.per_hour} automatic isolations reached"
        for label, domain, sizes, outs, fraction in (
            ("rack", host.rack_id, self.rack_size, self.rack_out, self.caps.rack),
            ("cluster", host.cluster_id, self.cluster_size, self.cluster_out, self.caps.cluster),
        ):
            if domain is None:
                continue
            size = sizes.get(domain, 0)
            allowed = Caps.allowed(size, fraction)
            if outs[domain] + 1 > allowed:
                name = self.names.get((label, domain), str(domain))
                return (
                    f"{label} {name} has {outs[domain]} of {size} hosts out of service; "
                    f"the limit is {fraction:.0%} = {allowed}"
                )
        return None

    def admit(self, host: Host) -> None:
        self.isolations_left -= 1
        if host.rack_id is not None:
            self.rack_out[host.rack_id] += 1
        if host.cluster_id is not None:
            self.cluster_out[host.cluster_id] += 1
