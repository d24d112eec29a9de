"""The demo fleet's disks, as the `filesystem_facts` operation prints them.

A simulated host answers that operation with the df, df -i and tune2fs -l lines a real one of its
hardware model would print: the datanodes' twelve 12 TB data disks made with mkfs.ext4's default
of one inode per 16 KiB and 5 % reserved for root (the waste the inode analysis is for: HDFS
keeps 128 MiB blocks, so almost every inode stays free), the compute nodes' NVMe scratch on XFS
(no inode tables: nothing to find) and the general-purpose nodes' data disks made `-T largefile`.
The inode counts are what mke2fs makes for that size (`inodes.mke2fs_inode_count`), so the
analysis reads figures that hold together; use varies per host, drawn from the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fleetops.analytics.storage.facts import MARK, Ext4Superblock
from fleetops.analytics.storage.inodes import mke2fs_inode_count

BLOCK = 4096
GROUP_BLOCKS = 32768
INODE_SIZE = 256
TB = 10**12
GB = 10**9


@dataclass(frozen=True, slots=True)
class Disk:
    """One filesystem of a model: where it is mounted and how it was made."""

    device: str
    mount: str
    fstype: str  # ext4 | xfs
    size: int  # bytes
    ratio: int = 16384  # mkfs.ext4 -i
    reserved_percent: int = 5  # mkfs.ext4 -m
    used: float = 0.5  # share of the space in use
    bytes_per_file: int = 64 * 1024  # average file size, for the inodes in use


ROOT = Disk("/dev/sda2", "/", "ext4", 200 * GB, used=0.3, bytes_per_file=40 * 1024)
DISKS: dict[str, list[Disk]] = {
    "dn-gen3": [
        ROOT,
        *(
            Disk(
                f"/dev/sd{chr(ord('b') + i)}1",
                f"/data{i + 1}",
                "ext4",
                12 * TB,
                used=0.62,
                bytes_per_file=70 * 1024 * 1024,
            )
            for i in range(12)
        ),
    ],
    "cn-gen4": [
        Disk("/dev/nvme0n1p2", "/", "ext4", 200 * GB, used=0.25, bytes_per_file=40 * 1024),
        *(Disk(f"/dev/nvme{i}n1", f"/scratch{i}", "xfs", 3840 * GB, used=0.4) for i in range(1, 4)),
    ],
    "gp-gen2": [
        ROOT,
        Disk(
            "/dev/sdb1",
            "/data",
            "ext4",
            1920 * GB,
            ratio=1 << 20,
            used=0.55,
            bytes_per_file=8 * 1024 * 1024,
        ),
    ],
}


def is_facts(command: str) -> bool:
    """The `filesystem_facts` operation's script (it prints its sections under `MARK`)."""
    return MARK.strip() in command and "tune2fs" in command


def answer(hostname: str, model: str, *, seed: int) -> str:
    """What `filesystem_facts` prints on a simulated host of `model` (a root disk when the
    model is unknown)."""
    rng = random.Random(f"{seed}:{hostname}:filesystems")
    disks = DISKS.get(model, [ROOT])
    figures = [_figures(disk, rng) for disk in disks]
    space = ["Filesystem     Type         1-blocks        Used   Available Capacity Mounted on"]
    inodes = ["Filesystem     Type       Inodes  IUsed    IFree IUse% Mounted on"]
    tune2fs: list[str] = []
    for disk, (sb, used_bytes, used_inodes) in zip(disks, figures, strict=True):
        size = sb.block_count * BLOCK
        avail = max(0, size - used_bytes - sb.reserved_block_count * BLOCK)
        space.append(
            f"{disk.device} {disk.fstype} {size} {used_bytes} {avail} "
            f"{_percent(used_bytes, used_bytes + avail)} {disk.mount}"
        )
        inodes.append(
            f"{disk.device} {disk.fstype} {sb.inode_count} {used_inodes} "
            f"{sb.inode_count - used_inodes} {_percent(used_inodes, sb.inode_count)} {disk.mount}"
        )
        if disk.fstype == "ext4":
            tune2fs += [f"{MARK}tune2fs exit=0 {disk.device} {disk.mount}", *_tune2fs(sb)]
    return "\n".join([f"{MARK}df exit=0", *space, f"{MARK}df-inodes exit=0", *inodes, *tune2fs, ""])


def _figures(disk: Disk, rng: random.Random) -> tuple[Ext4Superblock, int, int]:
    """The disk's superblock, bytes used and inodes used (XFS: a dynamic count df prints)."""
    blocks = disk.size // BLOCK
    used_bytes = int(blocks * BLOCK * disk.used * rng.uniform(0.85, 1.1))
    used_inodes = 11 + used_bytes // disk.bytes_per_file
    shape = Ext4Superblock(
        inode_count=0,
        free_inodes=0,
        inode_size=INODE_SIZE,
        block_count=blocks,
        block_size=BLOCK,
        reserved_block_count=0,
        free_blocks=0,
        first_block=0,
        blocks_per_group=GROUP_BLOCKS,
        inodes_per_group=0,
    )
    if disk.fstype == "xfs":
        count = used_inodes + (blocks * BLOCK // 4 // INODE_SIZE - used_inodes) // 10
    else:
        count = mke2fs_inode_count(shape, blocks * BLOCK // disk.ratio)
    groups = -(-blocks // GROUP_BLOCKS)
    sb = Ext4Superblock(
        inode_count=count,
        free_inodes=count - used_inodes,
        inode_size=INODE_SIZE,
        block_count=blocks,
        block_size=BLOCK,
        reserved_block_count=blocks * disk.reserved_percent // 100,
        free_blocks=blocks - used_bytes // BLOCK,
        first_block=0,
        blocks_per_group=GROUP_BLOCKS,
        inodes_per_group=count // groups,
        features=("has_journal", "extent", "flex_bg", "64bit"),
    )
    return sb, used_bytes, used_inodes


def _tune2fs(sb: Ext4Superblock) -> list[str]:
    return [
        "Filesystem volume name:   <none>",
        "Filesystem revision #:    1 (dynamic)",
        f"Filesystem features:      {' '.join(sb.features)}",
        f"Inode count:              {sb.inode_count}",
        f"Block count:              {sb.block_count}",
        f"Reserved block count:     {sb.reserved_block_count}",
        f"Free blocks:              {sb.free_blocks}",
        f"Free inodes:              {sb.free_inodes}",
        f"First block:              {sb.first_block}",
        f"Block size:               {sb.block_size}",
        f"Blocks per group:         {sb.blocks_per_group}",
        f"Inodes per group:         {sb.inodes_per_group}",
        f"Inode size:               {sb.inode_size}",
        "Reserved blocks uid:      0 (user root)",
    ]


def _percent(part: int, whole: int) -> str:
    return f"{-(-part * 100 // whole) if whole else 0}%"  # df rounds up
