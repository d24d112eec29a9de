"""Typed application errors; each carries its HTTP status (the CLI exit code: `kit.exitcodes`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class AppError(Exception):
    """Base of every error a user may see; `detail` says what to do."""

    status_code = 400

    def __init__(
        self,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}

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


class PayloadTooLarge(AppError):
    status_code = 413


class UnsupportedMediaType(AppError):
    status_code = 415


class TooManyRequests(AppError):
    status_code = 429


class Unavailable(AppError):
    status_code = 503


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
# Extra answers of the ingestion endpoints.
INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    **{
        code: {"model": ErrorBody, "description": text}
        for code, text in [
            (413, "the body (or its decompressed form) exceeds the configured limit"),
            (415, "unsupported Content-Encoding or Content-Type"),
            (429, "the ingestion queue is full or the token's rate is exceeded; see Retry-After"),
            (503, "ingestion is not running on this server, or storage failed; retry"),
        ]
    },
}
