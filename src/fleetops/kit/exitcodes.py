"""The CLI's exit codes, and the one an HTTP status maps to.

Standard library only: every command imports these, and most start without pydantic.
"""

from __future__ import annotations

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_REFUSED = 0, 1, 2, 3, 4


def exit_code_for_status(status: int) -> int:
    """Map an HTTP status to the CLI's documented exit codes."""
    if status < 400:
        return EXIT_OK
    if status == 404:
        return EXIT_NOT_FOUND
    if status in (401, 403, 409, 423, 429):
        return EXIT_REFUSED
    return EXIT_ERROR
