"""How every `fleetops resources` command answers: the report as asked, or one line naming what
was wrong (and where, for a bad row) with the exit code its kind of error has."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fleetops.analytics.resources.exceptions import SourceUnavailable, TraceError, TraceNotFound
from fleetops.kit.cli import emit, fail
from fleetops.kit.exitcodes import EXIT_USAGE, exit_code_for_status

T = TypeVar("T")


def computed(compute: Callable[[], T]) -> T:
    """`compute()`, or the command's end: a trace or source error exits with its status's code,
    a value the command cannot use with the usage code."""
    try:
        return compute()
    except (TraceError, TraceNotFound, SourceUnavailable) as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def answer(
    compute: Callable[[], dict[str, Any]],
    output: str,
    printer: Callable[[dict[str, Any]], None],
) -> None:
    """Compute a report and print it: as JSON or YAML when asked, else by `printer`."""
    report = computed(compute)
    if output.lower() != "table":
        emit(report, output)
        return
    printer(report)
