"""Forecast errors: a bad input names its file and line; nothing is forecast from half a file."""

from __future__ import annotations

from fleetops.errors import BadRequest


class ForecastInputError(BadRequest):
    """A series that cannot be read whole, or that is too short for what was asked.

    `where` (`usage.csv:17`, a path) leads the message so the CLI's one line says it."""

    def __init__(self, problem: str, *, where: str = "") -> None:
        self.problem = problem
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem, extra={"where": where})
