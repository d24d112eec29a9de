"""Typed application errors; each carries its HTTP status and maps to a CLI exit code."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class AppError(Exception):
    """Base of every error a user may see; `detail` says what to do."""

    status_code = 400

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.name, "detail": self.detail}
        body.update(self.extra)
        return body


class BadRequest(AppError):
    status_code = 400


class NotAuthenticated(AppError):
    status_code = 401


class PermissionDenied(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class TooManyRequests(AppError):
    status_code = 429


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


class ErrorBody(BaseModel):
    """What every error response carries; some add fields (`issues`, `errors`)."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (400, "bad request: invalid selector, import file or reference"),
        (401, "not authenticated"),
        (403, "authenticated, but the role does not allow this"),
        (404, "not found"),
        (409, "conflicts with the current state"),
        (422, "the payload or a parameter failed validation"),
        (429, "too many requests"),
    ]
}
