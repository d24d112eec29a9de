"""The devices' named values: a host's lifecycle state, a repair ticket's status, and the tools
whose output becomes hardware signals.

Standard library only, so the CLI and documents can name them without loading the database layer
(`tests/test_architecture.py` checks it).
"""

from __future__ import annotations

from enum import StrEnum


class Lifecycle(StrEnum):
    IN_SERVICE = "in_service"
    SUSPECT = "suspect"  # a signal says something may be wrong; still serving
    DRAINING = "draining"  # work is being moved away
    ISOLATED = "isolated"  # out of service, awaiting repair
    IN_REPAIR = "in_repair"
    VERIFYING = "verifying"  # repaired or new: must pass verification to serve
    PROVISIONING = "provisioning"  # new hardware, not yet verified
    RETIRED = "retired"  # final


class TicketStatus(StrEnum):
    OPEN = "open"
    DIAGNOSING = "diagnosing"
    WAITING_PARTS = "waiting_parts"
    REPAIRED = "repaired"
    VERIFIED = "verified"  # final: the device passed verification
    FAILED = "failed"  # final: this rung did not fix it

    @property
    def closed(self) -> bool:
        return self in (TicketStatus.VERIFIED, TicketStatus.FAILED)


# A tool whose output becomes signals. No docstring: it would become the API schema's description.
class Source(StrEnum):
    SMART = "smart"
    IPMI_SEL = "ipmi_sel"
    EDAC = "edac"
    NODE_EXPORTER = "node_exporter"
    DISK_PREDICTION = "disk_prediction"
    FILL_FORECAST = "fill_forecast"


class RuleMode(StrEnum):
    """How a remediation rule runs: acting, only recording what it would do, or not at all."""

    ENABLED = "enabled"
    DRY_RUN = "dry_run"
    DISABLED = "disabled"


class Remedy(StrEnum):
    """What a remediation rule does, each through a change."""

    DRAIN = "drain"  # isolate the host (the isolation change) and open its repair ticket
    RESTART_SERVICE = "restart_service"  # the rolling-restart workflow on the host
    RELEASE_RESERVE = "release_reserve"  # give a filling data disk its root reserve back


class RemedyStatus(StrEnum):
    PROPOSED = "proposed"  # dry run: what the rule would have submitted
    SUBMITTED = "submitted"  # the change is in; `change_id` names it
    HELD = "held"  # a budget or safety limit holds it; tried again on the next pass
    REFUSED = "refused"  # the change could not be submitted; the reason says why


class Outcome(StrEnum):
    PENDING = "pending"  # the change runs, or the verification window is not over
    FAILED = "failed"  # the change did not succeed
    FIXED = "fixed"  # the finding was not seen again within the window after the change
    NOT_FIXED = "not_fixed"  # it was
