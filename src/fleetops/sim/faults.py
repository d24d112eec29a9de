"""Faults the simulator injects, with the ground truth a correct diagnosis must name.

A fault is data (kind, target, onset, end, intensity). `schedule_faults` spreads a balanced set over
an evaluation window; `Effects` is what the active faults do to the fleet at a moment, the only
place the workload asks how much slower a disk, a link or a switch is; the `*_message` functions
are what the hardware makes the software say. Lines never carry the fault: detectors must infer
it from what the software logs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleetops.inventory.document import InventoryDoc

FAULT_KINDS = ("slow_disk", "flapping_link", "congested_link", "bad_tor", "bad_dimm", "full_disk")
HOST_KINDS = frozenset({"slow_disk", "flapping_link", "bad_dimm", "full_disk"})
UPLINK = "|uplink"
UPLINK_INTERFACE = "uplink"  # what a simulated ToR calls its uplink, as a link switch names it
# Hosts that never run tasks or serve blocks (they run the ResourceManager / NameNode).
MASTER_ROLES = frozenset({"master", "namenode"})


@dataclass(frozen=True)
class Fault:
    """One injected fault; `target` is a host, a ToR switch or `<tor>|uplink` depending on kind."""

    kind: str
    target: str
    onset: datetime
    end: datetime | None = None
    intensity: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if (self.kind == "congested_link") != self.target.endswith(UPLINK):
            raise ValueError(
                f"{self.kind} target {self.target!r}: only congested_link names an uplink"
            )
        if self.end is not None and self.end <= self.onset:
            raise ValueError("a fault must end after its onset")
        if not 0 < self.intensity <= 1:
            raise ValueError("intensity must be in (0, 1]")

    def entity(self) -> tuple[str, str]:
        """(entity_type, entity) a correct finding names."""
        if self.kind == "bad_tor":
            return ("switch", self.target)
        if self.kind == "congested_link":
            return ("link", self.target)
        return ("host", self.target)

    def active(self, at: datetime) -> bool:
        """Whether the fault is in effect at `at`."""
        return self.onset <= at and (self.end is None or at < self.end)


def slow_disk_factor(intensity: float) -> float:
    """How many times slower a slow disk reads, writes and makes its host's tasks (3–6×)."""
    return 3.0 + 3.0 * intensity


def congestion_factor(intensity: float) -> float:
    """How many times slower a congested uplink makes a cross-rack transfer (4–10×)."""
    return 4.0 + 6.0 * intensity


def bad_tor_effect(intensity: float) -> tuple[float, float]:
    """(slowdown, failure probability) of a transfer through a bad ToR."""
    return 2.0 + 4.0 * intensity, 0.05 * intensity


def full_disk_task_failure(intensity: float) -> float:
    """Probability that a task on a host with a full disk dies writing its spill files."""
    return 0.5 * intensity


def yarn_workers(fleet: InventoryDoc) -> dict[str, list[str]]:
    """Rack → hosts running tasks and datanodes (YARN clusters, masters excluded), fleet order."""
    yarn = {c.name for c in fleet.clusters if c.scheduler == "yarn"}
    racks: dict[str, list[str]] = {}
    for host in fleet.hosts:
        if host.cluster in yarn and host.rack and host.labels.get("role") not in MASTER_ROLES:
            racks.setdefault(host.rack, []).append(host.hostname)
    return racks


def tor_of(fleet: InventoryDoc) -> dict[str, str]:
    """Rack → its ToR switch."""
    return {s.rack: s.name for s in fleet.switches if s.role == "tor" and s.rack}


def targets(fleet: InventoryDoc, kind: str) -> list[str]:
    """The targets a fault of `kind` may hit in `fleet`."""
    return [target for target, _ in _candidates(fleet, kind)]


def _candidates(fleet: InventoryDoc, kind: str) -> list[tuple[str, str]]:
    """(target, rack) pairs a fault of `kind` may hit: what the workload would show it on."""
    workers = yarn_workers(fleet)
    if kind in HOST_KINDS:
        return [(h, rack) for rack, hosts in workers.items() for h in hosts]
    tors = tor_of(fleet)
    suffix = UPLINK if kind == "congested_link" else ""
    return [(tors[rack] + suffix, rack) for rack in workers if rack in tors]


def schedule_faults(
    fleet: InventoryDoc,
    *,
    count: int,
    seed: int,
    start: datetime,
    duration: timedelta,
    kinds: Sequence[str] = FAULT_KINDS,
) -> list[Fault]:
    """`count` faults spread over [start, start+duration): kinds balanced, distinct targets, and
    never two faults on one rack at once, so each finding has one right answer."""
    if count < 1 or not kinds:
        return []
    rng = random.Random(seed)
    order = [kinds[i % len(kinds)] for i in range(count)]
    rng.shuffle(order)
    slot = duration / count
    window_end = start + duration
    placed: list[tuple[Fault, str]] = []
    for i, kind in enumerate(order):
        onset = start + slot * (i + rng.uniform(0.05, 0.3))
        end = min(onset + slot * rng.uniform(0.8, 1.5), window_end)
        used = {f.target for f, _ in placed}
        busy = {rack for f, rack in placed if f.onset < end and (f.end is None or onset < f.end)}
        free = [(t, r) for t, r in _candidates(fleet, kind) if t not in used and r not in busy]
        if not free:
            raise ValueError(f"no free target for fault {i + 1} ({kind}): fleet too small")
        target, rack = rng.choice(free)
        intensity = round(rng.uniform(0.6, 1.0), 2)
        placed.append((Fault(kind, target, onset, end, intensity), rack))
    return [f for f, _ in placed]


class Flaps:
    """A flapping link's down intervals (µs since the workload's start), drawn lazily from the
    fault's own seed so that a transfer can ask about any moment, also one ahead of the clock."""

    def __init__(self, fault: Fault, seed: int, onset_us: int, end_us: int | None) -> None:
        self.rng = random.Random(f"{seed}:{fault.kind}:{fault.target}:{fault.onset.isoformat()}")
        self.mean_gap_s = 60.0 - 50.0 * fault.intensity  # 10 s at full intensity, 60 s at least
        self.end_us = end_us
        self.intervals: list[tuple[int, int]] = []  # (down, up), ordered
        self._next = onset_us + int(self.rng.uniform(1.0, 10.0) * 1e6)

    def _grow(self) -> bool:
        down = self._next
        if self.end_us is not None and down >= self.end_us:
            return False
        up = down + int(self.rng.uniform(1.0, 8.0) * 1e6)
        self.intervals.append((down, up))
        self._next = up + int(self.rng.uniform(0.5, 1.5) * self.mean_gap_s * 1e6)
        return True

    def first_from(self, t: int) -> tuple[int, int] | None:
        """The first down interval starting at or after `t`; None once the fault has ended."""
        for interval in self.intervals:
            if interval[0] >= t:
                return interval
        while self._grow():
            if self.intervals[-1][0] >= t:
                return self.intervals[-1]
        return None

    def down(self, t: int) -> bool:
        """Whether the link is down at `t`."""
        while (not self.intervals or self.intervals[-1][0] <= t) and self._grow():
            pass
        return any(down <= t < up for down, up in self.intervals)

    def forget(self, t: int) -> None:
        """Drop intervals over before `t`: nobody asks about the past."""
        while self.intervals and self.intervals[0][1] < t:
            self.intervals.pop(0)


class Effects:
    """What the active faults do right now, keyed by host or rack; the workload's only view."""

    def __init__(self) -> None:
        self.disk: dict[str, float] = {}  # host → slowdown
        self.full: dict[str, float] = {}  # host → task failure probability
        self.uplink: dict[str, float] = {}  # rack → cross-rack slowdown
        # Racks whose ToR uplink was drained (traffic moved to the other paths): a congested
        # uplink no longer slows their transfers.
        self.drained: set[str] = set()
        self.tor: dict[str, tuple[float, float]] = {}  # rack → (slowdown, failure probability)
        self.flaps: dict[str, Flaps] = {}  # host → its link's down intervals

    def link_down(self, host: str, t: int) -> bool:
        """Whether the host's NIC link is down at `t` (µs since the workload's start)."""
        flaps = self.flaps.get(host)
        return flaps is not None and flaps.down(t)


# -- what the hardware makes the software say (message bodies, without the log header) ----------

DN_LOG = "org.apache.hadoop.hdfs.server.datanode.DataNode"
VOLUME_CHECKER = "org.apache.hadoop.hdfs.server.datanode.checker.DatasetVolumeChecker"


def pick_dimm(rng: random.Random) -> tuple[int, int, int, int]:
    """A DIMM (socket, home agent, channel, slot): a bad one keeps its place in every error."""
    return rng.randint(0, 1), rng.randint(0, 1), rng.randint(0, 2), rng.randint(0, 1)


def edac_message(
    rng: random.Random, dimm: tuple[int, int, int, int], page: int | None = None
) -> str:
    """One corrected memory error as the sb_edac driver reports it (`page`: a weak cell's)."""
    socket, ha, chan, slot = dimm
    page = page if page is not None else rng.randrange(0x100000, 0x3FFFFF)
    offset, rank = rng.randrange(0, 4096, 64), slot
    return (
        f"EDAC MC{socket}: 1 CE memory read error on "
        f"CPU_SrcID#{socket}_Ha#{ha}_Chan#{chan}_DIMM#{slot} (channel:{chan} slot:{slot} "
        f"page:0x{page:x} offset:0x{offset:x} grain:32 syndrome:0x0 - area:DRAM "
        f"err_code:0101:009{chan} socket:{socket} ha:{ha} channel_mask:{1 << chan} rank:{rank})"
    )


MCE_MESSAGE = "mce: [Hardware Error]: Machine check events logged"


def nic_driver(gbps: float) -> str:
    """The kernel driver of a NIC of that speed: mlx5_core (100G), i40e (25G), ixgbe (10G)."""
    return "mlx5_core" if gbps >= 100 else "i40e" if gbps >= 25 else "ixgbe"


def link_messages(gbps: float) -> tuple[str, str]:
    """(down, up) lines of eth0's driver when the link drops and comes back."""
    driver = nic_driver(gbps)
    nic = f"{driver} 0000:3b:00.0 eth0"
    if driver == "mlx5_core":
        return f"{nic}: Link down", f"{nic}: Link up"
    if driver == "i40e":
        return f"{nic}: NIC Link is Down", (
            f"{nic}: NIC Link is Up, {gbps:g} Gbps Full Duplex, Requested FEC: CL108 RS-FEC, "
            "Negotiated FEC: CL108 RS-FEC, Autoneg: False, Flow Control: None"
        )
    return f"{nic}: NIC Link is Down", f"{nic}: NIC Link is Up {gbps:g} Gbps, Flow Control: RX/TX"


def io_error_message(rng: random.Random) -> str:
    """A failed read on the data disk, as the block layer reports it."""
    sector = rng.randrange(10**6, 2 * 10**10)
    return (
        f"blk_update_request: I/O error, dev sdb, sector {sector} op 0x0:(READ) flags 0x0 "
        "phys_seg 1 prio class 0"
    )


def hung_task_message(rng: random.Random) -> str:
    """The hung-task watchdog on a process stuck in disk I/O."""
    return f"INFO: task java:{rng.randrange(2000, 60000)} blocked for more than 120 seconds."


def slow_write_message(rng: random.Random, cost_ms: int, block_id: int) -> str:
    """The DataNode's warning when a packet took over 300 ms to reach the disk."""
    return (
        f"Slow BlockReceiver write data to disk cost:{cost_ms}ms (threshold=300ms), "
        f"volume=file:/data/{rng.randint(1, 12)}/dfs/dn, blockId={block_id}"
    )


def slow_flush_message(rng: random.Random, cost_ms: int, block_id: int) -> str:
    """The DataNode's warning when flushing a block file took over 300 ms."""
    nanos = cost_ms * 1_000_000 + rng.randrange(10**6)
    return (
        f"Slow flushOrSync took {cost_ms}ms (threshold=300ms), isSync:false, "
        f"flushTotalNanos={nanos}ns, volume=file:/data/{rng.randint(1, 12)}/dfs/dn, "
        f"blockId={block_id}"
    )


def out_of_space_message(block: str, block_size: int) -> str:
    """A full DataNode refusing a block it was asked to write."""
    return (
        f"opWriteBlock {block} received exception org.apache.hadoop.util.DiskChecker"
        "$DiskOutOfSpaceException: Out of space: The volume with the most available space "
        f"(=0 B) is less than the block size (={block_size} B)."
    )


def volume_check_message(rng: random.Random) -> str:
    """The DataNode's periodic volume check failing on a full disk (exception's first line)."""
    volume = f"/data/{rng.randint(1, 12)}/dfs/dn"
    return (
        f"Exception running disk checks against volume {volume}: "
        "org.apache.hadoop.util.DiskChecker$DiskErrorException: Error checking directory "
        f"{volume}/current: No space left on device"
    )


NO_SPACE = "java.io.IOException: No space left on device"
