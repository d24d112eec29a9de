"""`fleetops agent`: tail log files on a fleet host and ship them to a fleetops server.

This command imports nothing of the server side (no database, no web stack): it runs on hosts.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from fleetops.agent.checkpoint import default_state_dir
from fleetops.agent.exceptions import AgentError
from fleetops.agent.progress import Log
from fleetops.agent.runner import AgentOptions, Stopped, run_agent
from fleetops.agent.ship import ShipOptions
from fleetops.agent.tail import TailOptions
from fleetops.errors import EXIT_USAGE
from fleetops.kit.cli import fail

# Fields the server reads as the message, host, time, file or offset: not usable as labels.
RESERVED_LABELS = {
    "message", "log", "msg", "MESSAGE", "_msg", "host", "hostname", "_HOSTNAME", "HOSTNAME",
    "timestamp", "date", "time", "ts", "@timestamp", "file", "offset",
}  # fmt: skip
COMPRESSED = ["*.gz", "*.bz2", "*.xz", "*.zst", "*.zip", "*.lz4"]
MIB = 1024 * 1024


def parse_labels(values: list[str]) -> dict[str, str]:
    """`k=v` pairs into labels, refusing malformed and reserved keys."""
    labels: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"--label {value!r}: expected KEY=VALUE", EXIT_USAGE)
        if key in RESERVED_LABELS:
            fail(f"--label {key}: {key!r} is a field the server reads itself", EXIT_USAGE)
        labels[key] = text
    return labels


def _token(token: str | None, token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            fail(f"cannot read --token-file {token_file}: {exc.strerror}", EXIT_USAGE)
    if not token:
        fail(
            "an ingest token is needed: --token, --token-file or FLEETOPS_INGEST_TOKEN "
            "(create one with `fleetops logs token create NAME`)",
            EXIT_USAGE,
        )
    return token


def agent_command(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            help="files or globs to follow ('/var/log/*.log', '/data/**/*.log'); quote globs "
            "so they are re-expanded for files created later",
            show_default=False,
        ),
    ],
    server: Annotated[
        str | None,
        typer.Option(envvar="FLEETOPS_SERVER", help="fleetops server URL", show_default=False),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="FLEETOPS_INGEST_TOKEN",
            help="ingest token (`fleetops logs token create NAME`)",
            show_default=False,
        ),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="read the ingest token from this file", show_default=False)
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="FLEETOPS_AGENT_STATE_DIR",
            help="checkpoints; default $XDG_STATE_HOME/fleetops-agent or "
            "~/.local/state/fleetops-agent",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(help="host name sent with each line; default: this machine's"),
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="KEY=VALUE added to every line; repeat")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            help=f"file-name glob that glob matches skip; repeat (default: {' '.join(COMPRESSED)})",
            show_default=False,
        ),
    ] = None,
    from_end: Annotated[
        bool,
        typer.Option(
            "--from-end", help="files unknown at start-up are read from their end, not the start"
        ),
    ] = False,
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="ship what the files hold now, wait for the acknowledgement, exit 0"
        ),
    ] = False,
    batch_lines: Annotated[int, typer.Option(min=1, max=100_000, help="lines per request")] = 1000,
    batch_bytes: Annotated[
        int, typer.Option(min=1024, max=64 * MIB, help="about this many bytes per request")
    ] = 4 * MIB,
    flush_interval: Annotated[
        float, typer.Option(min=0.0, max=60.0, help="seconds a line waits for a fuller batch")
    ] = 1.0,
    max_line_bytes: Annotated[
        int, typer.Option(min=256, max=64 * MIB, help="longer lines are cut into pieces")
    ] = MIB,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, max=10.0, help="seconds between checks for new data")
    ] = 0.25,
    rescan_interval: Annotated[
        float, typer.Option(min=0.1, max=3600.0, help="seconds between glob expansions")
    ] = 5.0,
    rotate_wait: Annotated[
        float,
        typer.Option(
            min=0.0, max=3600.0, help="seconds a rotated file is read after it goes quiet"
        ),
    ] = 5.0,
    max_backoff: Annotated[
        float, typer.Option(min=0.1, max=3600.0, help="longest pause between retries, seconds")
    ] = 30.0,
    timeout: Annotated[
        float, typer.Option(min=1.0, max=3600.0, help="seconds to wait for one answer")
    ] = 30.0,
    progress_interval: Annotated[
        float, typer.Option(min=0.0, help="seconds between progress lines on stderr; 0: none")
    ] = 60.0,
) -> None:
    """Tail log files and ship them to a fleetops server, without losing or duplicating lines.

    Follows rename rotation and copytruncate. Checkpoints after each acknowledged batch.
    After a crash it sends again what was not acknowledged; the server drops what it has.
    """
    root = ctx.find_root().params
    server = server or root.get("server")
    if not server:
        fail("the server URL is needed: --server or FLEETOPS_SERVER", EXIT_USAGE)
    tail = TailOptions(
        patterns=tuple(paths),
        excludes=tuple(COMPRESSED if exclude is None else exclude),
        from_end=from_end,
        max_line_bytes=max_line_bytes,
        rotate_wait=rotate_wait,
        once=once,
    )
    ship = ShipOptions(
        server=server,
        token=_token(token, token_file),
        host=host or socket.gethostname(),
        labels=parse_labels(label or []),
        timeout=timeout,
        max_backoff=max_backoff,
    )
    options = AgentOptions(
        state_dir=state_dir or default_state_dir(),
        once=once,
        batch_lines=batch_lines,
        batch_bytes=batch_bytes,
        flush_interval=flush_interval,
        poll_interval=poll_interval,
        rescan_interval=rescan_interval,
        progress_interval=progress_interval,
    )
    log = Log()
    try:
        run_agent(tail, ship, options, log=log)
    except AgentError as exc:
        fail(str(exc), exc.exit_code)
    except Stopped:
        log.info("stopped; the next start resumes from the checkpoint")
    except KeyboardInterrupt:
        log.info("interrupted; resumes from the checkpoint next time")
        raise typer.Exit(130) from None
