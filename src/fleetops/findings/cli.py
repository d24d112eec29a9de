"""`fleetops finding ...`."""

from __future__ import annotations

import typer

finding_app = typer.Typer(
    help="Findings: what detectors found, with evidence.", no_args_is_help=True
)
