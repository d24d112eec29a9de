"""The inspection's named values: the probes, and the verdict on a probe's result.

Standard library only, so the CLI and documents can name them without loading the database layer
(`tests/test_architecture.py` checks it).
"""

from __future__ import annotations

from enum import StrEnum


class Probe(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"
    SMART = "smart"  # judged by thresholds (inspection.health), not by a model's baseline
    NETWORK = "network"


# The verdict on one probe result.
class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"  # a busy machine or a thin baseline is no proof
    ERROR = "error"  # the probe did not run or its output was unreadable
