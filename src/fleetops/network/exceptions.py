"""The network domain's errors."""

from __future__ import annotations

from fleetops.errors import Conflict, NotFound


class SwitchNotFound(NotFound):
    pass


class NoManagementHost(Conflict):
    """No host is labelled with the network tool it reaches the switches with."""
