"""The findings' named values: a finding's status and its severity.

Standard library only, so the CLI and documents can name them without loading the database layer
(`tests/test_architecture.py` checks it).
"""

from __future__ import annotations

from enum import StrEnum


class FindingStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"  # someone looks at it; detectors still bump it
    RESOLVED = "resolved"  # final: a recurrence opens a new finding


LIVE = frozenset({FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED})


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)
