"""Errors of the devices domain, each with its HTTP status."""

from fleetops.errors import NotFound


class DeviceNotFound(NotFound):
    """No host of that name: every host is a device, so an unknown host is an unknown device."""


class TicketNotFound(NotFound):
    """No repair ticket with that id."""
