"""`fleetops agent`."""

from __future__ import annotations

import typer


def agent_command() -> None:
    """Tail log files and ship them to a fleetops server."""
    raise typer.Exit(2)
