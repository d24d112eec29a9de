"""Prediction errors: a bad SMART history names its file and line, never yields half a ranking."""

from __future__ import annotations

from fleetops.errors import BadRequest, NotFound


class HistoryError(BadRequest):
    """A SMART history that cannot be read whole: a malformed row, a missing column.

    `where` names the place (`2013-04-10.csv.gz line 17`) and is part of the message."""

    def __init__(self, problem: str, *, where: str = "") -> None:
        self.problem = problem
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem, extra={"where": where})


class HistoryNotFound(NotFound):
    """A history directory that is not there, or holds no daily file up to the date asked."""
