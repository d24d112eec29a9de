"""The `fleetops logs` commands: search, tail, templates and ingest tokens through the API, and
`parse`, which mines templates from a log file offline (one JSON line per input line)."""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated, Any, NoReturn

import typer

# The API client (`fleetops.kit.cli`: httpx, pydantic, rich) is imported by the commands that speak
# to the API, not here: `logs parse` runs offline, and loading this module must not load it.
from fleetops.kit.output import Column, OutputOption
from fleetops.logs.parse.command import parse_file

logs_app = typer.Typer(
    help="Logs: search the recent window, templates, ingest tokens, offline parsing.",
    no_args_is_help=True,
)
token_app = typer.Typer(
    help="Ingest tokens: credentials for shippers and agents.", no_args_is_help=True
)
logs_app.add_typer(token_app, name="token")

LINE_COLUMNS: list[Column] = [
    ("ts", "ts"),
    ("host", "host"),
    ("tpl", "template_id"),
    ("message", lambda r: r["message"][:160]),
]
TEMPLATE_COLUMNS: list[Column] = [
    ("id", "id"),
    ("count", "count"),
    ("last seen", "last_seen"),
    ("template", lambda r: r["text"][:140]),
]
TOKEN_COLUMNS: list[Column] = [
    ("name", "name"),
    ("prefix", "prefix"),
    ("hosts", lambda t: t.get("hosts") or "any"),
    ("created", "created_at"),
    ("by", "created_by"),
    ("last seen", "last_seen_at"),
    ("revoked", "revoked_at"),
]


@logs_app.command("search")
def search(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option()] = None,
    source: Annotated[str | None, typer.Option(help="ingest token name, or syslog")] = None,
    template: Annotated[int | None, typer.Option(help="template id")] = None,
    contains: Annotated[str | None, typer.Option("--contains", "-c")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="ISO time, e.g. 2026-11-26T10:00Z")
    ] = None,
    until: Annotated[str | None, typer.Option("--to")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    output: OutputOption = "table",
) -> None:
    """Raw lines from the recent window, newest first."""
    from fleetops.kit.cli import api, emit

    lines = api(ctx).get(
        "/api/v1/logs/search",
        host=host,
        source=source,
        template=template,
        contains=contains,
        limit=limit,
        **{"from": since, "to": until},
    )
    emit(lines, output, LINE_COLUMNS)


@logs_app.command("tail")
def tail(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option()] = None,
    template: Annotated[int | None, typer.Option(help="template id")] = None,
    contains: Annotated[str | None, typer.Option("--contains", "-c")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, max=1000)] = 10,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f")] = True,
    interval: Annotated[float, typer.Option(min=0.1)] = 1.0,
) -> None:
    """Print the last lines, then new ones as they arrive (Ctrl-C stops)."""
    from fleetops.kit.cli import api

    client = api(ctx)
    filters = {"host": host, "template": template, "contains": contains}
    last = client.get("/api/v1/logs/search", limit=max(lines, 1), **filters)
    for line in reversed(last[:lines]):
        _print_line(line)
    after = last[0]["id"] if last else 0
    try:
        while follow:
            time.sleep(interval)
            for line in client.get("/api/v1/logs/search", after_id=after, limit=1000, **filters):
                _print_line(line)
                after = line["id"]
    except KeyboardInterrupt:
        pass


def _print_line(line: dict[str, Any]) -> None:
    sys.stdout.write(f"{line['ts']} {line['host']} {line['message']}\n")
    sys.stdout.flush()


@logs_app.command("templates")
def templates(
    ctx: typer.Context,
    contains: Annotated[str | None, typer.Option("--contains", "-c")] = None,
    since: Annotated[str | None, typer.Option(help="seen since (ISO time)")] = None,
    order: Annotated[str, typer.Option(help="count | last_seen | first_seen | id")] = "count",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    output: OutputOption = "table",
) -> None:
    """Mined templates with their counts, most frequent first."""
    from fleetops.kit.cli import api, emit

    page = api(ctx).get(
        "/api/v1/logs/templates",
        contains=contains,
        since=since,
        order=order,
        limit=limit,
        offset=offset,
    )
    emit(page, output, TEMPLATE_COLUMNS)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the shipper's name; becomes the lines' source")],
    hosts: Annotated[
        str | None,
        typer.Option(
            "--hosts", help="selector of the hosts whose lines it may send (default: any host)"
        ),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """Create an ingest token; it is printed once. Bind a host's shipper to that host
    (`--hosts HOSTNAME`): lines it sends about other hosts are refused and counted."""
    from fleetops.kit.cli import api, emit, stdout

    body: dict[str, str] = {"name": name}
    if hosts:
        body["hosts"] = hosts
    created = api(ctx).post("/api/v1/logs/tokens", body)
    if output != "table":
        emit(created, output)
        return
    stdout.print(f"ingest token {created['name']!r} created; it is shown only now:")
    sys.stdout.write(created["token"] + "\n")


@token_app.command("list")
def token_list(ctx: typer.Context, output: OutputOption = "table") -> None:
    """Ingest tokens (never their secrets)."""
    from fleetops.kit.cli import api, emit

    emit(api(ctx).get("/api/v1/logs/tokens"), output, TOKEN_COLUMNS)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, name: str) -> None:
    """Revoke an ingest token; its shipper is refused within seconds."""
    from fleetops.kit.cli import api, stdout

    api(ctx).delete(f"/api/v1/logs/tokens/{name}")
    stdout.print(f"ingest token {name!r} revoked")


@logs_app.command("parse")
def parse(
    file: Annotated[str, typer.Argument(help="log file, or - for standard input")],
    content_only: Annotated[
        bool, typer.Option("--content-only", help="each line is the message itself")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="jsonl")] = "jsonl",
) -> None:
    """Print {"line", "template_id", "template", "params"} for every line of FILE.

    Lines are read and mined a block (256 KiB) at a time. Each line is printed
    with its template as it stands after its block: a template that widens
    within a block is shown widened, with the parameters it takes, for the
    block's earlier lines too (ids never change). Standard input is printed a
    block at a time, once the block is full or the input ends."""
    if output != "jsonl":
        _usage_error(f"unknown output {output!r}; logs parse writes jsonl")
    if file != "-" and not os.path.isfile(file):
        _usage_error(f"{file}: not a file (give a log file, or - to read standard input)")
    parse_file(file, content_only=content_only)


def _usage_error(message: str) -> NoReturn:
    from fleetops.kit.cli import EXIT_USAGE, fail

    fail(message, EXIT_USAGE)
