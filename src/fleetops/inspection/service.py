"""Running probes on hosts, storing their results, and judging them against baselines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fleetops.changes.executor import Executor, Result, Target


class InspectionService:
    """The `inspect_hardware` action the change engine runs, with the database it needs."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    async def action(
        self, executor: Executor, target: Target, params: Mapping[str, Any], timeout: float
    ) -> Result:
        """Probe the host, store and judge each result; exit 0 only when every verdict passes."""
        return Result(exit_code=None, error="inspection is not built yet")
