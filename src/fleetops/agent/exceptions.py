"""Why the agent stops: each error carries the exit code the command ends with."""

from __future__ import annotations

from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_REFUSED


class AgentError(Exception):
    """A condition retrying cannot fix; the agent stops with a one-line message."""

    exit_code = EXIT_ERROR


class TokenRefused(AgentError):
    """The server refused the ingest token (401/403): stop rather than spin on it."""

    exit_code = EXIT_REFUSED
