"""`fleetops inspect run|show` and `fleetops baseline show|build`."""

from __future__ import annotations

import typer

inspect_app = typer.Typer(
    help="Hardware inspection: probe hosts and judge them against their model's baseline.",
    no_args_is_help=True,
)
baseline_app = typer.Typer(
    help="Per-model baselines: the healthy band of every probe's curve.", no_args_is_help=True
)
