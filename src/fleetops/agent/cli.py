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
from fleetops.kit.cli import fail
from fleetops.kit.exitcodes import EXIT_USAGE

# Fields the server reads as the message, host, time, file or offset: not usable as labels.
RESERVED_LABELS = {
    "message", "log", "msg", "MESSAGE", "_msg", "host", "hostname", "_HOSTNAME", "HOSTNAME",
    "timestamp", "date", "time", "ts", "@timestamp", "file", "offset",
}  # fmt: skip
COMPRESSED = ["*.gz", "*.bz2", "*.xz", "*.zst", "*.zip", "*.lz4"]
MIB = 1024 * 1024

# The command's arguments and options, declared once here so its signature stays readable.
PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="files or globs to follow ('/var/log/*.log', '/data/**/*.log'); quote globs "
        "so they are re-expanded for files created later",
        show_default=False,
    ),
]
ServerOpt = Annotated[
    str | None,
    typer.Option(envvar="FLEETOPS_SERVER", help="fleetops server URL", show_default=False),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        envvar="FLEETOPS_INGEST_TOKEN",
        help="ingest token (`fleetops logs token create NAME`)",
        show_default=False,
    ),
]
TokenFileOpt = Annotated[
    Path | None, typer.Option(help="read the ingest token from this file", show_default=False)
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="FLEETOPS_AGENT_STATE_DIR",
        help="checkpoints; default $XDG_STATE_HOME/fleetops-agent or ~/.local/state/fleetops-agent",
        show_default=False,
    ),
]
HostOpt = Annotated[
    str | None,
    typer.Option(help="host name sent with each line; default: this machine's"),
]
LabelOpt = Annotated[
    list[str] | None, typer.Option("--label", help="KEY=VALUE added to every line; repeat")
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        help=f"file-name glob that glob matches skip; repeat (default: {' '.join(COMPRESSED)})",
        show_default=False,
    ),
]
FromEndOpt = Annotated[
    bool,
    typer.Option(
        "--from-end", help="files unknown at start-up are read from their end, not the start"
    ),
]
OnceOpt = Annotated[
    bool,
    typer.Option(
        "--once", help="ship what the files hold now, wait for the acknowledgement, exit 0"
    ),
]
BatchLinesOpt = Annotated[int, typer.Option(min=1, max=100_000, help="lines per request")]
BatchBytesOpt = Annotated[
    int, typer.Option(min=1024, max=64 * MIB, help="about this many bytes per request")
]
FlushIntervalOpt = Annotated[
    float, typer.Option(min=0.0, max=60.0, help="seconds a line waits for a fuller batch")
]
MaxLineBytesOpt = Annotated[
    int, typer.Option(min=256, max=64 * MIB, help="longer lines are cut into pieces")
]
PollIntervalOpt = Annotated[
    float, typer.Option(min=0.01, max=10.0, help="seconds between checks for new data")
]
RescanIntervalOpt = Annotated[
    float, typer.Option(min=0.1, max=3600.0, help="seconds between glob expansions")
]
RotateWaitOpt = Annotated[
    float,
    typer.Option(min=0.0, max=3600.0, help="seconds a rotated file is read after it goes quiet"),
]
MaxBackoffOpt = Annotated[
    float, typer.Option(min=0.1, max=3600.0, help="longest pause between retries, seconds")
]
TimeoutOpt = Annotated[
    float, typer.Option(min=1.0, max=3600.0, help="seconds to wait for one answer")
]
ProgressIntervalOpt = Annotated[
    float, typer.Option(min=0.0, help="seconds between progress lines on stderr; 0: none")
]


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


def _server_url(ctx: typer.Context, server: str | None) -> str:
    """The server to ship to: the agent's own --server, else the one given to `fleetops`."""
    server = server or ctx.find_root().params.get("server")
    if not server:
        fail("the server URL is needed: --server or FLEETOPS_SERVER", EXIT_USAGE)
    return server


def _run(tail: TailOptions, ship: ShipOptions, options: AgentOptions) -> None:
    """Run until done or stopped, turning each way of stopping into its message and exit code."""
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


def agent_command(
    ctx: typer.Context,
    paths: PathsArg,
    server: ServerOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    state_dir: StateDirOpt = None,
    host: HostOpt = None,
    label: LabelOpt = None,
    exclude: ExcludeOpt = None,
    from_end: FromEndOpt = False,
    once: OnceOpt = False,
    batch_lines: BatchLinesOpt = 1000,
    batch_bytes: BatchBytesOpt = 4 * MIB,
    flush_interval: FlushIntervalOpt = 1.0,
    max_line_bytes: MaxLineBytesOpt = MIB,
    poll_interval: PollIntervalOpt = 0.25,
    rescan_interval: RescanIntervalOpt = 5.0,
    rotate_wait: RotateWaitOpt = 5.0,
    max_backoff: MaxBackoffOpt = 30.0,
    timeout: TimeoutOpt = 30.0,
    progress_interval: ProgressIntervalOpt = 60.0,
) -> None:
    """Tail log files and ship them to a fleetops server, without losing or duplicating lines.

    Follows rename rotation and copytruncate. Checkpoints after each acknowledged batch.
    After a crash it sends again what was not acknowledged; the server drops what it has.
    """
    server = _server_url(ctx, server)
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
    _run(tail, ship, options)
