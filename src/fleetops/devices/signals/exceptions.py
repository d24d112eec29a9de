"""Errors of the hardware signal adapters, each with its HTTP status."""

from fleetops.errors import AppError


class SignalError(AppError):
    """A tool's output that an adapter cannot read; the message says where and what to run."""

    status_code = 422


class SourceUnavailable(SignalError):
    """The signal's source cannot be read here: no EDAC tree, an exporter that does not answer."""

    status_code = 502
