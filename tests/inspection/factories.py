"""Small builders of probe output and results for the inspection tests."""

from __future__ import annotations

from fleetops.inspection.probes import (
    MARK_AFTER,
    MARK_IDLE_END,
    MARK_IDLE_START,
    MARK_TOOL,
    LoadSample,
    ProbeResult,
)

IDLE = LoadSample(
    cpus=8, load1_before=0.1, load1_after=0.4, busy_before=0.02, busy_during=0.3, steal_during=0.0
)


def proc(load1: float, user: int, idle: int, steal: int = 0) -> str:
    """A /proc/loadavg + /proc/stat reading of a 2-CPU machine."""
    return (
        f"{load1} 0.20 0.10 1/100 4242\n"
        f"cpu  {user} 0 0 {idle} 0 0 0 {steal} 0 0\n"
        f"cpu0 {user // 2} 0 0 {idle // 2} 0 0 0 0 0 0\n"
        f"cpu1 {user // 2} 0 0 {idle // 2} 0 0 0 0 0 0\n"
        "intr 0\n"
    )


def wrapped(tool_output: str, *, before: str | None = None, after: str | None = None) -> str:
    """Output as the wrapped command prints it: idle window, tool, after."""
    return "\n".join(
        [
            MARK_IDLE_START,
            before or proc(0.5, 1000, 9000),
            MARK_IDLE_END,
            proc(0.5, 1010, 9190),
            MARK_TOOL,
            tool_output,
            MARK_AFTER,
            after or proc(0.9, 1210, 9190, steal=0),
        ]
    )


def result(
    points: dict[str, float], *, load: LoadSample = IDLE, probe: str = "disk"
) -> ProbeResult:
    """A result with the given curve, all points in IOPS."""
    return ProbeResult(
        probe=probe,
        tool_version="fio-3.33",
        points=points,
        units=dict.fromkeys(points, "IOPS"),
        load=load,
    )
