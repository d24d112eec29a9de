"""A host as an executor sees it, built in one place.

The engine, the preview an approver reads and the ad-hoc route all hand executors the same
facts: address, SSH user and port, whether to become another user through sudo, and the labels
a step's `by_label` choice reads (the host's own, plus scheduler, cluster, rack and model, which
its own labels may override).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from fleetops.changes.executor import Target
from fleetops.inventory.formats import ansible
from fleetops.models import Host

# Loader options that make `target_of` free of further queries (use with select(Host)).
WITH_FACTS: tuple[Any, ...] = (
    selectinload(Host.labels),
    joinedload(Host.cluster),
    joinedload(Host.rack),
    joinedload(Host.model),
)


def target_of(host: Host) -> Target:
    """The target of a host loaded with WITH_FACTS."""
    labels = {label.key: label.value for label in host.labels}
    if host.cluster is not None:
        labels.setdefault("scheduler", host.cluster.scheduler)
        labels.setdefault("cluster", host.cluster.name)
    if host.rack is not None:
        labels.setdefault("rack", host.rack.name)
    if host.model is not None:
        labels.setdefault("model", host.model.name)
    return Target(
        hostname=host.hostname,
        address=host.address,
        port=host.ssh_port,
        user=host.ssh_user,
        labels=labels,
        # `ansible_become` from the host's inventory: a login that is not root runs steps
        # through sudo. Its key file and jump host are not taken: the server connects with
        # its own settings, not with paths and hosts an inventory file names.
        become_user=ansible.connection(labels)[0].get("become_user", ""),
    )


def load_target(session: Session, host_id: int | None) -> Target:
    """The target of the host with this id (which exists: host runs restrict its deletion)."""
    host = session.scalar(
        select(Host)
        .where(Host.id == host_id)
        .options(*WITH_FACTS)
        .execution_options(populate_existing=True)
    )
    assert host is not None
    return target_of(host)
