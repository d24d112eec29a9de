"""Resource analysis errors: a bad trace says which file and line, never yields half a figure."""

from __future__ import annotations

from fleetops.errors import BadRequest, Conflict, NotFound, Unavailable


class TraceError(BadRequest):
    """A trace that cannot be read whole: a missing file, a malformed row.

    `where` names the place (`batch_tasks.csv.gz line 17`) and is part of the message."""

    def __init__(self, problem: str, *, where: str = "") -> None:
        self.problem = problem
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem, extra={"where": where})


class TraceNotFound(NotFound):
    """A trace directory that is not there, or holds no task or instance files."""


class SourceUnavailable(Unavailable):
    """A usage source that cannot be read now: a Prometheus that does not answer, or errs."""


class ReportNotFound(NotFound):
    """No resource report or recommendation with that id."""


class DecisionRefused(Conflict):
    """A recommendation that cannot be decided that way now (applied, or already so)."""


class NothingToApply(Conflict):
    """A report with nothing that can be applied: none accepted, or a setting missing."""
