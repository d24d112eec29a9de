"""Errors of the findings domain, each with its HTTP status."""

from fleetops.errors import AppError, Conflict, NotFound


class FindingNotFound(NotFound):
    pass


class InvalidFinding(AppError):
    """A report that cannot be stored as given (unknown severity, empty entity, bad evidence)."""

    status_code = 422


class ReportContended(Conflict):
    """The finding's key kept changing hands between concurrent reporters; report again."""
