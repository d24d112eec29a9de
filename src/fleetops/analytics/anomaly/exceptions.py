"""Anomaly errors: a bad input names its file and line, and nothing is scored from half a file."""

from __future__ import annotations

from fleetops.errors import BadRequest


class SeriesError(BadRequest):
    """A series, label or profile file that cannot be read whole.

    `where` (`data/x.csv:17`, a path) leads the message so the CLI's one line says it."""

    def __init__(self, problem: str, *, where: str = "") -> None:
        self.problem = problem
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem, extra={"where": where})
