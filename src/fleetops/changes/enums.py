"""The changes' named values: a change request's state, and the states of host and step runs.

Standard library only, so the CLI and documents can name them without loading the database layer
(`tests/test_architecture.py` checks it).
"""

from __future__ import annotations

from enum import StrEnum


class ChangeState(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTING = "aborting"  # rolling back the hosts already done
    ABORTED = "aborted"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


class HostRunState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    CANCELLED = "cancelled"


class StepRunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SATISFIED = "satisfied"  # a check said the step's work is already done
    UNSATISFIED = "unsatisfied"  # a check said it is not: the step runs
    INTERRUPTED = "interrupted"  # the engine stopped while it ran


# States after which nothing more runs in a change.
TERMINAL = frozenset(
    {
        ChangeState.REJECTED,
        ChangeState.SUCCEEDED,
        ChangeState.FAILED,
        ChangeState.ABORTED,
        ChangeState.ROLLED_BACK,
        ChangeState.CANCELLED,
    }
)
