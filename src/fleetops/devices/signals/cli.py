"""`fleetops device signals ingest|scrape`: send a tool's output for a host to the API, which
turns its problems into findings.

Run where the tool's output is: on the host itself (from cron or a timer), or on a collector that
reaches its BMC or exporter. `--state FILE` keeps what was sent last, so counters (EDAC,
node_exporter) report increases and SEL events are not reported twice.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from fleetops.devices.enums import Source
from fleetops.kit.cli import EXIT_USAGE, Column, OutputOption, api, emit, fail, stdout

signals_app = typer.Typer(
    help="Hardware signals: SMART, IPMI SEL, EDAC and node_exporter output as host findings.",
    no_args_is_help=True,
)


COLUMNS: list[Column] = [
    ("id", "id"),
    ("severity", "severity"),
    ("signature", lambda f: f["details"].get("signature")),
    ("component", lambda f: f["details"].get("component")),
    ("seen", "occurrences"),
    ("title", "title"),
]
HostOption = Annotated[str, typer.Option("--host", help="the host the output is about")]
StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state",
        dir_okay=False,
        help="file keeping the last payload sent for this host and source, for deltas",
    ),
]


@signals_app.command("ingest")
def ingest(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(help="the tool's output, - for standard input; for edac a sysfs root"),
    ],
    host: HostOption,
    source: Annotated[Source, typer.Option("--source", help="the tool that wrote FILE")],
    state: StateOption = None,
    output: OutputOption = "table",
) -> None:
    """Report the problems in one tool's output for a host (e.g. `smartctl -j -a /dev/sda`)."""
    payload: Any = _read_edac(Path(file)) if _is_sysfs(source, file) else _read_text(file)
    _send(ctx, host, source, payload, state, output)


@signals_app.command("scrape")
def scrape(
    ctx: typer.Context,
    host: HostOption,
    url: Annotated[str, typer.Option("--url", help="e.g. http://dn-001:9100/metrics")],
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds to wait for the page")] = 10.0,
    state: StateOption = None,
    output: OutputOption = "table",
) -> None:
    """Scrape a node_exporter and report the hardware problems its metrics show."""
    # Imported here, not at the top: `fleetops --help` should not load the adapters.
    from fleetops.devices.signals.exceptions import SignalError
    from fleetops.devices.signals.node_exporter import scrape as fetch

    try:
        text = fetch(url, timeout=timeout)
    except SignalError as exc:
        fail(exc.detail)
    _send(ctx, host, Source.NODE_EXPORTER, text, state, output)


def _is_sysfs(source: Source, file: str) -> bool:
    return source is Source.EDAC and file != "-" and Path(file).is_dir()


def _read_edac(root: Path) -> dict[str, Any]:
    from fleetops.devices.signals.edac import read_edac
    from fleetops.devices.signals.exceptions import SignalError

    try:
        return read_edac(root)
    except SignalError as exc:
        fail(exc.detail)


def _read_text(file: str) -> str:
    try:
        if file == "-":
            return sys.stdin.read()
        return Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", EXIT_USAGE)


def _send(
    ctx: typer.Context,
    host: str,
    source: Source,
    payload: Any,
    state: Path | None,
    output: str,
) -> None:
    previous = _load_state(state, host, source) if state else None
    result: dict[str, Any] = api(ctx).post(
        f"/api/v1/devices/{host}/signals",
        {"source": source.value, "payload": payload, "previous": previous},
    )
    if state:
        _save_state(state, host, source, _to_keep(source, payload))
    if output != "table":
        emit(result, output)
        return
    if result["findings"]:
        emit(result["findings"], "table", COLUMNS)
    opened = len(result["opened"])
    bumped = len(result["findings"]) - opened
    summary = (
        f"{host}: {result['signals']} problem(s) in {source.value} output; "
        f"{opened} finding(s) opened, {bumped} bumped"
        if result["signals"]
        else f"{host}: no hardware problem in {source.value} output"
    )
    stdout.print(summary, highlight=False, markup=False)


def _to_keep(source: Source, payload: Any) -> Any:
    """What the next run compares with: SMART needs nothing, a scrape only its counters."""
    if source is Source.SMART:
        return None
    if source is Source.NODE_EXPORTER:
        from fleetops.devices.signals.node_exporter import counters_only

        return counters_only(payload)
    return payload


def _load_state(path: Path, host: str, source: Source) -> Any:
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None  # the first run: everything is new
    except (OSError, ValueError) as exc:
        fail(f"state file {path} cannot be read ({exc}); remove it to start afresh")
    if not isinstance(kept, dict) or (kept.get("host"), kept.get("source")) != (host, source.value):
        fail(f"state file {path} is not for host {host} and source {source.value}", EXIT_USAGE)
    return kept.get("payload")


def _save_state(path: Path, host: str, source: Source, payload: Any) -> None:
    """Replace the state file atomically: a crash leaves the old one or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as tmp:
        json.dump({"host": host, "source": source.value, "payload": payload}, tmp)
    os.replace(tmp.name, path)
