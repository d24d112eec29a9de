"""Why a Prometheus query failed: each says which server and what to do."""

from __future__ import annotations


class PrometheusError(Exception):
    """A query did not give a usable result."""


class PrometheusUnreachable(PrometheusError):
    """No connection, or no answer in time: the server may be down (retried with backoff)."""


class PrometheusAnswerError(PrometheusError):
    """Prometheus answered with an error: a bad query, a timeout on its side, a proxy's page."""

    def __init__(self, message: str, *, status: int, error_type: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class UnexpectedResult(PrometheusError):
    """The answer is not the vector or matrix asked for (a scalar, a string, malformed JSON)."""
