"""The real executors, built from the settings in one place: the server's engine and
`fleetops exec` reach hosts with the same SSH key, known hosts and host-key policy."""

from __future__ import annotations

from dataclasses import replace

from fleetops.adapters.local import LocalExecutor
from fleetops.adapters.ssh import SshConfig, SshExecutor
from fleetops.changes.executor import Executor
from fleetops.config import Settings


def from_settings(settings: Settings, *, max_connections: int | None = None) -> dict[str, Executor]:
    """SSH to the fleet and local processes on this machine (`max_connections`: SSH
    connections open at once, e.g. `exec --forks`)."""
    config = SshConfig(
        key_path=settings.ssh_key_path,
        known_hosts=settings.ssh_known_hosts,
        host_key_policy=settings.ssh_host_key_policy,
        become_password=settings.ssh_become_password.get_secret_value(),
    )
    if max_connections is not None:
        config = replace(config, max_connections=max_connections)
    return {"ssh": SshExecutor(config), "local": LocalExecutor()}
