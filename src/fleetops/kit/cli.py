"""What every domain's CLI shares: the API client, output formats and exit codes.

Commands always speak the REST API: to a server (`--server`) over HTTP, or to an in-process app on
the local database. One code path, the same validation and audit either way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from fleetops.kit.exitcodes import EXIT_ERROR, EXIT_USAGE, exit_code_for_status
from fleetops.kit.output import FORMATS, Column, OutputOption

if TYPE_CHECKING:
    import httpx

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "FORMATS", "Column", "OutputOption"]

# Piped output is not cut to 80 columns: tables stay whole for grep and less.
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 240)
stderr = Console(stderr=True, soft_wrap=True)


class CommandFailed(Exception):
    def __init__(self, message: str, code: int, lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.lines = list(lines)


def fail(message: str, code: int = EXIT_ERROR, lines: Sequence[str] = ()) -> NoReturn:
    """Stop the command with a one-line error (and optional detail lines)."""
    raise CommandFailed(message, code, lines)


class ApiClient:
    """Thin JSON client that turns error responses into `CommandFailed` with the right code."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        # Loaded already by whoever built `self.http`; at the top it would slow every command's
        # start-up, `--help` and the commands that never call the API included.
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the server: {exc}; check --server / FLEETOPS_SERVER")
        if response.status_code >= 400:
            self._raise(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def _raise(self, response: httpx.Response) -> NoReturn:
        try:
            body = response.json()
        except ValueError:
            body = {"error": f"HTTP {response.status_code}", "detail": response.text[:500]}
        issues = body.get("issues") or []
        lines = [
            f"line {i['line']}: {i['message']}" if i.get("line") else i["message"] for i in issues
        ]
        detail = body.get("detail") if not issues else f"{len(issues)} problem(s), nothing changed"
        fail(
            f"{body.get('error', 'error')}: {detail}",
            exit_code_for_status(response.status_code),
            lines,
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


@dataclass
class CliState:
    """Held in the Typer context; builds the client on first use so `--help` stays instant."""

    factory: Callable[[], ApiClient]
    _client: ApiClient | None = field(default=None, init=False)

    def client(self) -> ApiClient:
        if self._client is None:
            self._client = self.factory()
        return self._client

    def close(self) -> None:
        """Shut the client down (for the in-process app: its lifespan and worker thread)."""
        if self._client is not None:
            self._client.http.__exit__(None, None, None)
            self._client = None


def api(ctx: typer.Context) -> ApiClient:
    """The API client of this invocation."""
    state = ctx.find_root().obj
    assert isinstance(state, CliState)
    return state.client()


def emit(data: Any, fmt: str, columns: Sequence[Column] = (), *, title: str | None = None) -> None:
    """Print `data` as a table (with `columns`), JSON or YAML."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        fail(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}", EXIT_USAGE)
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt == "yaml":
        import yaml  # only this format needs it: not loaded at every command's start-up

        sys.stdout.write(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False))
    else:
        _table(data, columns, title)


def _cell(row: dict[str, Any], getter: str | Callable[[dict[str, Any]], Any]) -> str:
    value = getter(row) if callable(getter) else row.get(getter)
    if value is None:
        return ""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _table(data: Any, columns: Sequence[Column], title: str | None) -> None:
    rows = data.get("items", data) if isinstance(data, dict) and "items" in data else data
    if isinstance(rows, dict):
        table = Table("field", "value", title=title, show_header=False)
        for key, value in rows.items():
            table.add_row(key, _cell(rows, key) if not isinstance(value, str) else value)
        stdout.print(table)
        return
    table = Table(*[c[0] for c in columns], title=title)
    for row in rows:
        table.add_row(*[_cell(row, getter) for _, getter in columns])
    stdout.print(table)
    if isinstance(data, dict) and "total" in data and data["total"] > len(rows):
        stderr.print(f"showing {len(rows)} of {data['total']} (use --limit/--offset)")
