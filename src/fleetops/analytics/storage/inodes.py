"""Inode provisioning: what ext2/3/4 filesystems set aside for inodes and root, and what a
different setting would give back.

ext4 writes its inode tables when it is made: `mkfs.ext4 -i RATIO` gives one inode per RATIO
bytes whether files ever use them or not, and each takes `Inode size` bytes (256 today) of the
disk. A data disk of large files made with the default (16 KiB per inode) keeps 1.6 % of its
space in inode tables it will never fill. Its reserved blocks (5 % by default, `-m`) exist so
root can still write when users have filled the disk: on a data disk no root process needs them.
XFS (and btrfs) allocate inodes as files are made, so they have no such tables and no reserve:
they are reported, never a finding.

All arithmetic is on integers (percentages and the headroom are `Fraction`s): a saving is what
the command would give back, to the byte, as mke2fs and tune2fs compute it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from fleetops.analytics.storage.facts import Ext4Superblock, HostFacts

EXT = ("ext2", "ext3", "ext4")
MIN_RATIO = 1024  # mke2fs -i bounds: EXT2_MIN_BLOCK_SIZE ...
MAX_RATIO = 65536 * 1024  # ... to EXT2_MAX_BLOCK_SIZE x 1024
FIRST_INODE = 11  # inodes 1-10 are reserved, 11 is lost+found: a filesystem has at least these
# Mounts the system writes to as root: their reservation is what keeps root working on a full
# disk, so it is not offered back.
SYSTEM_MOUNTS = frozenset({"/", "/boot", "/usr", "/var", "/var/log", "/tmp", "/home"})

FindingKind = Literal["inode_tables", "reserved_blocks"]


@dataclass(frozen=True, slots=True)
class Policy:
    """What the analysis aims at; every figure a site may argue with is here."""

    headroom: Fraction = Fraction(2)  # used inodes x this must still fit after re-provisioning
    reserved_percent: Fraction = Fraction(1)  # the reservation a data filesystem keeps
    system_mounts: frozenset[str] = SYSTEM_MOUNTS


@dataclass(frozen=True, slots=True)
class Filesystem:
    """One filesystem of one host, as the analysis needs it."""

    host: str
    device: str
    mount: str
    fstype: str
    inodes_total: int
    inodes_used: int
    superblock: Ext4Superblock | None = None  # ext2/3/4 only


@dataclass(frozen=True, slots=True)
class Finding:
    """One saving on one filesystem, with the command that would make it."""

    host: str
    device: str
    mount: str
    kind: FindingKind
    saving_bytes: int
    command: str
    reformat: bool  # the command destroys the data: it must be copied off and back
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    """One filesystem: provisioned against used inodes, what its tables and reserve hold."""

    filesystem: Filesystem
    inode_table_bytes: int  # inode count x inode size; 0 where inodes are dynamic
    inodes_needed: int  # used x headroom, rounded up
    reserved_bytes: int
    findings: tuple[Finding, ...] = ()

    @property
    def short(self) -> bool:
        """Fewer inodes provisioned than the headroom wants: a disk that will run out."""
        return self.filesystem.superblock is not None and (
            self.filesystem.inodes_total < self.inodes_needed
        )


@dataclass
class Totals:
    """Reports summed per host or per hardware model."""

    filesystems: int = 0
    inodes_total: int = 0
    inodes_used: int = 0
    inode_table_bytes: int = 0
    reserved_bytes: int = 0
    inode_saving_bytes: int = 0
    reserved_saving_bytes: int = 0
    short: int = 0
    reformats: int = 0

    @property
    def saving_bytes(self) -> int:
        return self.inode_saving_bytes + self.reserved_saving_bytes


@dataclass
class Fleet:
    """Every host's reports, and what could not be read, for one run of the analysis."""

    reports: list[Report] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)  # host -> its problems


def analyze_fleet(facts: Mapping[str, HostFacts], *, policy: Policy | None = None) -> Fleet:
    """Reports for every host's facts (host name -> what `filesystem_facts` found there)."""
    fleet = Fleet()
    for host, found in facts.items():
        fleet.reports.extend(analyze(filesystems(host, found), policy=policy))
        if found.problems:
            fleet.problems[host] = list(found.problems)
    return fleet


def filesystems(host: str, facts: HostFacts) -> list[Filesystem]:
    """The filesystems of a host's facts: ext ones with their superblock, the others by df.

    Inode use is df's (statfs, live); a mounted ext4's superblock counts free inodes lazily,
    so its `Free inodes` may be minutes old."""
    found: list[Filesystem] = []
    for row in facts.inodes:
        superblock = facts.ext.get(row.source)
        total, used = row.total, row.used
        if superblock is not None:
            total = superblock.inode_count
        found.append(Filesystem(host, row.source, row.target, row.fstype, total, used, superblock))
    listed = {row.source for row in facts.inodes}
    for device, superblock in facts.ext.items():
        if device not in listed:  # a superblock without a df row: its own counts
            mount = facts.targets.get(device, "")
            total, used = superblock.inode_count, superblock.used_inodes
            kind = _ext_kind(superblock)
            found.append(Filesystem(host, device, mount, kind, total, used, superblock))
    return found


def _ext_kind(sb: Ext4Superblock) -> str:
    if "extent" in sb.features or "flex_bg" in sb.features:
        return "ext4"
    return "ext3" if "has_journal" in sb.features else "ext2"


def analyze(found: Iterable[Filesystem], *, policy: Policy | None = None) -> list[Report]:
    """A report per filesystem, with the savings the policy finds."""
    policy = policy or Policy()
    return [_report(fs, policy) for fs in found]


def _report(fs: Filesystem, policy: Policy) -> Report:
    needed = _ceil(fs.inodes_used * policy.headroom)
    sb = fs.superblock
    if sb is None:
        return Report(fs, 0, needed, 0)
    findings = [
        f
        for f in (_inode_finding(fs, sb, needed), _reserve_finding(fs, sb, policy))
        if f is not None
    ]
    return Report(
        fs,
        inode_table_bytes=sb.inode_count * sb.inode_size,
        inodes_needed=needed,
        reserved_bytes=sb.reserved_block_count * sb.block_size,
        findings=tuple(findings),
    )


def _inode_finding(fs: Filesystem, sb: Ext4Superblock, needed: int) -> Finding | None:
    """Re-provision with the largest power-of-two `-i` whose inodes still hold `needed`."""
    choice = reprovision(sb, needed)
    if choice is None:
        return None
    ratio, count = choice
    saving = (sb.inode_count - count) * sb.inode_size
    mkfs = f"mkfs.{fs.fstype if fs.fstype in EXT else 'ext4'}"
    return Finding(
        fs.host,
        fs.device,
        fs.mount,
        "inode_tables",
        saving,
        f"{mkfs} -i {ratio} -I {sb.inode_size} {fs.device}",
        reformat=True,
        detail=(
            f"{sb.inode_count:,} inodes provisioned, {fs.inodes_used:,} used; -i {ratio} "
            f"makes {count:,} (room for {needed:,}): a reformat, the data copied off and back"
        ),
    )


def reprovision(sb: Ext4Superblock, needed: int) -> tuple[int, int] | None:
    """The power-of-two bytes-per-inode ratio making the fewest inodes (as mke2fs would on
    this size, block size, inode size and group size) that still hold `needed`, the smallest
    such ratio where several make the same count; None when none makes fewer than now."""
    best: tuple[int, int] | None = None
    ratio = MIN_RATIO
    while ratio <= MAX_RATIO:
        count = mke2fs_inode_count(sb, sb.block_count * sb.block_size // ratio)
        if needed <= count < (sb.inode_count if best is None else best[1]):
            best = (ratio, count)
        ratio *= 2
    return best


def mke2fs_inode_count(sb: Ext4Superblock, requested: int) -> int:
    """The inode count mke2fs makes when `requested` is asked for (`-N`, or size / `-i`):
    rounded up per group to whole inode-table blocks, then down to a multiple of 8 per group
    (e2fsprogs, lib/ext2fs/initialize.c)."""
    groups = -(-(sb.block_count - sb.first_block) // sb.blocks_per_group)
    per_block = sb.block_size // sb.inode_size
    per_group = -(-max(requested, FIRST_INODE + 1) // groups)
    per_group = -(-per_group // per_block) * per_block
    per_group = max(per_group, 8) & ~7
    return per_group * groups


def _reserve_finding(fs: Filesystem, sb: Ext4Superblock, policy: Policy) -> Finding | None:
    """Reserved blocks beyond the policy's percentage, on a filesystem no system writes to."""
    if fs.mount in policy.system_mounts:
        return None
    target = (
        sb.block_count
        * policy.reserved_percent.numerator
        // (100 * policy.reserved_percent.denominator)
    )  # tune2fs -m: percent x blocks / 100, truncated
    if sb.reserved_block_count <= target:
        return None
    percent = policy.reserved_percent
    option = f"-m {percent.numerator}" if percent.denominator == 1 else f"-r {target}"
    saving = (sb.reserved_block_count - target) * sb.block_size
    return Finding(
        fs.host,
        fs.device,
        fs.mount,
        "reserved_blocks",
        saving,
        f"tune2fs {option} {fs.device}",
        reformat=False,
        detail=(
            f"{sb.reserved_block_count:,} blocks reserved for root "
            f"({_percent(sb.reserved_block_count, sb.block_count)} %), {target:,} at "
            f"{_show(percent)} %: online, no unmount"
        ),
    )


def totals(reports: Iterable[Report], key: Callable[[Report], str]) -> dict[str, Totals]:
    """Reports summed by `key` (a host, a hardware model), in the order keys first appear."""
    found: dict[str, Totals] = {}
    for report in reports:
        _add(found.setdefault(key(report), Totals()), report)
    return found


def by_host(reports: Iterable[Report]) -> dict[str, Totals]:
    return totals(reports, lambda r: r.filesystem.host)


def by_model(
    reports: Iterable[Report], models: Mapping[str, str], *, unknown: str = "(no model)"
) -> dict[str, Totals]:
    """Totals per hardware model, `models` mapping each host to its model."""
    return totals(reports, lambda r: models.get(r.filesystem.host, unknown))


def _add(total: Totals, report: Report) -> None:
    fs = report.filesystem
    total.filesystems += 1
    total.inodes_total += fs.inodes_total
    total.inodes_used += fs.inodes_used
    total.inode_table_bytes += report.inode_table_bytes
    total.reserved_bytes += report.reserved_bytes
    total.short += report.short
    for finding in report.findings:
        if finding.kind == "inode_tables":
            total.inode_saving_bytes += finding.saving_bytes
            total.reformats += 1
        else:
            total.reserved_saving_bytes += finding.saving_bytes


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


def _percent(part: int, whole: int) -> str:
    return _show(Fraction(part * 100, whole)) if whole else "0"


def _show(value: Fraction) -> str:
    """A percentage to two decimals for a sentence (the figures themselves stay exact)."""
    return f"{float(value):.2f}".rstrip("0").rstrip(".")
