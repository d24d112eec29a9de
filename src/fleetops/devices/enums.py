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
