"""Storage analysis errors: a bad input says where it is bad, never yields half a report."""

from __future__ import annotations

from fleetops.errors import BadRequest, Conflict, NotFound


class InputError(BadRequest):
    """An input that cannot be read whole: truncated, corrupt, an unknown layout, a bad row.

    `where` names the place (`section INODE at offset 1234`, `line 17`, a path) and is part of
    the message, so the CLI's one line and the API's `detail` both say it."""

    def __init__(self, problem: str, *, where: str = "") -> None:
        self.problem = problem
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem, extra={"where": where})


class AnalysisNotFound(NotFound):
    pass


class NothingToPropose(Conflict):
    """The report has no finding the asked-for change would act on."""
