"""Filesystem facts are read from the real outputs of df, tune2fs -l and xfs_info (this
machine's, and images made for the test), and a line that is not theirs is named."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fleetops.analytics.storage.exceptions import InputError
from fleetops.analytics.storage.facts import (
    MARK,
    DfInodes,
    DfSpace,
    parse_collected,
    parse_df,
    parse_df_inodes,
    parse_tune2fs,
    parse_xfs_info,
)
from fleetops.changes.operations import load_library, validate_params
from fleetops.changes.templating import HostFacts, operation_context, render
from tests.analytics.storage.trees import ext4_image, needs_e2fsprogs, needs_xfsprogs, tool

MiB = 1024 * 1024


def df(*args: str) -> str:
    return subprocess.run(
        ["df", *args], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}
    ).stdout


# df ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("-B1", "-P"),
        ("-B1", "-P", "-T"),
        ("-P",),  # 1024-blocks, scaled to bytes
        ("-B1", "--output=source,fstype,size,used,avail,target"),
    ],
)
def test_this_machines_df_is_read_in_bytes(args: tuple[str, ...]) -> None:
    text = df(*args, "/")
    rows = parse_df(text)
    assert [(r.source, r.target) for r in rows] == [(rows[0].source, "/")]
    vfs = os.statvfs("/")
    assert rows[0].size == vfs.f_blocks * vfs.f_frsize
    assert rows[0].avail <= vfs.f_blocks * vfs.f_frsize
    everything = parse_df(df(*args))
    assert len(everything) == len(df(*args).splitlines()) - 1


@pytest.mark.parametrize(
    "args",
    [("-i", "-P"), ("-i", "-P", "-T"), ("--output=source,fstype,itotal,iused,iavail,target",)],
)
def test_this_machines_df_inodes_are_read(args: tuple[str, ...]) -> None:
    (row,) = parse_df_inodes(df(*args, "/"))
    vfs = os.statvfs("/")
    assert (row.target, row.total) == ("/", vfs.f_files)
    assert row.used + row.free == row.total or row.total == 0


def test_df_rows_may_hold_spaces_and_dashes() -> None:
    text = (
        "Filesystem           Type    1-blocks      Used Available Capacity Mounted on\n"
        "/dev/sdb1            ext4 1000000000 250000000 700000000      27% /data/disk one\n"
        "//nas/share x        cifs       4096         0      4096       0% /mnt/nas\n"
    )
    assert parse_df(text) == [
        DfSpace("/dev/sdb1", "ext4", 1_000_000_000, 250_000_000, 700_000_000, "/data/disk one"),
        DfSpace("//nas/share x", "cifs", 4096, 0, 4096, "/mnt/nas"),
    ]
    inodes = (
        "Filesystem     Inodes IUsed   IFree IUse% Mounted on\n"
        "/dev/sdc1           0     0       0     - /btrfs\n"
        "/dev/sdb1      655360 12001  643359    2% /data\n"
    )
    assert parse_df_inodes(inodes) == [
        DfInodes("/dev/sdc1", "", 0, 0, 0, "/btrfs"),
        DfInodes("/dev/sdb1", "", 655_360, 12_001, 643_359, "/data"),
    ]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("", "df line 1", "no df header"),
        ("Filesystem Size Used Avail Use% Mounted on\n", "df line 1", "unknown df column 'Size'"),
        (
            "Filesystem Inodes IUsed IFree IUse% Mounted on\n",
            "df line 1",
            "expected the columns of df",
        ),
        (
            "Filesystem 1-blocks Used Available Capacity Mounted on\n"
            "/dev/sda1 100 50 50 50% /\n"
            "/dev/sdb1 100 lots 50 50% /data\n",
            "df line 3",
            "not a df row",
        ),
    ],
)
def test_a_bad_df_line_is_named(text: str, where: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        parse_df(text)
    assert caught.value.where == where


# tune2fs -l ----------------------------------------------------------------------------------


@needs_e2fsprogs
def test_tune2fs_of_a_real_image_is_read(tmp_path: Path) -> None:
    img = ext4_image(tmp_path / "img", "64M", "-i", "65536", "-m", "5", "-L", "data1")
    sb = parse_tune2fs(tool("tune2fs", "-l", img))
    # mke2fs.conf's "small" type (< 512 MiB): 1 KiB blocks; inode size 256; one inode per
    # 65,536 bytes: 64 MiB / 64 KiB = 1,024; 5 % of 65,536 blocks reserved, truncated: 3,276
    assert (sb.block_size, sb.block_count, sb.first_block) == (1024, 65_536, 1)
    assert (sb.inode_count, sb.inode_size, sb.inodes_per_group) == (1024, 256, 128)
    assert sb.reserved_block_count == 65_536 * 5 // 100 == 3276
    assert sb.used_inodes == 11  # inodes 1-10 reserved, 11 is lost+found
    assert (sb.blocks_per_group, sb.volume_name) == (8192, "data1")
    assert "extent" in sb.features


@needs_e2fsprogs
def test_tune2fs_of_a_revision_0_filesystem_has_128_byte_inodes(tmp_path: Path) -> None:
    img = ext4_image(tmp_path / "img", "8M", "-r", "0", "-O", "^metadata_csum")
    text = tool("tune2fs", "-l", img)
    assert "Inode size" not in text
    assert parse_tune2fs(text).inode_size == 128


@needs_e2fsprogs
def test_the_lines_the_operation_keeps_read_as_the_whole(tmp_path: Path) -> None:
    text = tool("tune2fs", "-l", ext4_image(tmp_path / "img", "16M"))
    script = operation_script()
    keep = re.search(r"keep='([^']+)'", script)
    assert keep is not None
    kept = [line for line in text.splitlines() if re.match(keep[1], line)]
    assert len(kept) < len(text.splitlines()) / 2
    assert parse_tune2fs("\n".join(kept)) == parse_tune2fs(text)


_KEPT = [
    "Filesystem features",
    "Inode count",
    "Block count",
    "Reserved block count",
    "Free blocks",
    "Free inodes",
    "First block",
    "Block size",
    "Blocks per group",
    "Inodes per group",
    "Inode size",
]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (
            "tune2fs: Bad magic number in super-block while trying to open /dev/sdz",
            "line 1",
            "failed",
        ),
        ("Inode count: 10\n", "tune2fs -l", "no 'Free inodes' line"),
        (
            "\n".join(f"{k}: 1" for k in _KEPT).replace("Inode size: 1", "Inode size: big"),
            "line",
            "not a count",
        ),
    ],
)
def test_a_bad_tune2fs_line_is_named(text: str, where: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        parse_tune2fs(text)
    assert where in caught.value.where


# xfs_info -------------------------------------------------------------------------------------

OLD_XFS_INFO = """\
meta-data=/dev/sdb1              isize=512    agcount=4, agsize=65536000 blks
         =                       sectsz=4096  attr=2, projid32bit=1
         =                       crc=1        finobt=0 spinodes=0
data     =                       bsize=4096   blocks=262144000, imaxpct=25
         =                       sunit=0      swidth=0 blks
naming   =version 2              bsize=4096   ascii-ci=0 ftype=1
log      =internal               bsize=4096   blocks=128000, version=2
         =                       sectsz=4096  sunit=1 blks, lazy-count=1
realtime =none                   extsz=4096   blocks=0, rtextents=0
"""


def test_xfs_info_of_an_older_xfsprogs_is_read() -> None:
    geo = parse_xfs_info(OLD_XFS_INFO)
    assert (geo.device, geo.isize, geo.agcount, geo.agsize) == ("/dev/sdb1", 512, 4, 65_536_000)
    assert (geo.bsize, geo.blocks, geo.imaxpct, geo.sectsz) == (4096, 262_144_000, 25, 4096)
    assert (geo.log_blocks, geo.realtime_blocks) == (128_000, 0)  # log's bsize is not data's


@needs_xfsprogs
@pytest.mark.parametrize("reader", ["xfs_info", "xfs_db"])
def test_xfs_info_of_a_real_image_is_read(tmp_path: Path, reader: str) -> None:
    img = tmp_path / "img"
    with img.open("wb") as f:
        f.truncate(300 * MiB)  # mkfs.xfs's smallest filesystem
    tool("mkfs.xfs", "-q", "-f", "-i", "size=512", "-d", "agcount=4", img)
    # xfs_info reads an image file as it would a mount point (xfsprogs >= 5.x)
    text = (
        tool("xfs_info", img) if reader == "xfs_info" else tool("xfs_db", "-r", "-c", "info", img)
    )
    geo = parse_xfs_info(text)
    assert (geo.isize, geo.agcount, geo.bsize, geo.imaxpct) == (512, 4, 4096, 25)
    assert geo.blocks == 300 * MiB // 4096
    assert geo.agsize * geo.agcount == geo.blocks


def test_a_bad_xfs_info_line_is_named() -> None:
    with pytest.raises(InputError, match="not xfs_info output") as caught:
        parse_xfs_info("xfs_info: /data is not a mounted XFS filesystem")
    assert caught.value.where == "xfs_info line 1"
    with pytest.raises(InputError, match="isize") as caught:
        parse_xfs_info(OLD_XFS_INFO.replace("isize=512", "isize=lots"))
    assert caught.value.where == "xfs_info line 1"


# the operation ----------------------------------------------------------------------------------


def operation_script() -> str:
    """filesystem_facts' run phase, rendered as the engine renders it."""
    spec = load_library().get("filesystem_facts")
    assert spec is not None
    assert (spec.risk, spec.kind, spec.params) == ("read_only", "check", {})
    context = operation_context(
        validate_params(spec.params, {}),
        host=HostFacts(hostname="localhost"),
        change_id=1,
        timeout=spec.timeout,
    )
    call = spec.run.resolve({})
    assert isinstance(call, str)
    return render(call, context)


def test_the_operation_on_this_machine_reads_back() -> None:
    done = subprocess.run(["sh", "-c", operation_script()], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    facts = parse_collected(done.stdout)
    assert "/" in [row.target for row in facts.space] + [row.target for row in facts.inodes]
    for device in facts.ext:  # only where this process may read the device
        assert facts.ext[device].inode_count > 0
    assert all(": exit " in problem for problem in facts.problems)


@needs_e2fsprogs
@needs_xfsprogs
def test_the_operation_reads_mounted_ext4_and_xfs(tmp_path: Path) -> None:
    """Both images loop-mounted in a mount namespace of the test's own, so no other process
    (another test reading df) sees them."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("loop-mounting an image needs root and unshare")
    ext = ext4_image(tmp_path / "ext.img", "64M", "-i", "65536", "-m", "5")
    xfs = tmp_path / "xfs.img"
    with xfs.open("wb") as f:
        f.truncate(300 * MiB)
    tool("mkfs.xfs", "-q", "-f", xfs)
    (tmp_path / "e").mkdir()
    (tmp_path / "x").mkdir()
    mounts = f"mount -o loop,ro {ext} {tmp_path / 'e'} && mount -o loop,ro {xfs} {tmp_path / 'x'}"
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"{mounts} && {operation_script()}",
        ],
        capture_output=True,
        text=True,
    )
    if "mount:" in done.stderr or "unshare:" in done.stderr:
        pytest.skip(f"cannot loop-mount here: {done.stderr.strip()[:200]}")
    facts = parse_collected(done.stdout)
    (device,) = [d for d, target in facts.targets.items() if target == str(tmp_path / "e")]
    assert facts.ext[device] == parse_tune2fs(tool("tune2fs", "-l", ext))
    (xdevice,) = [d for d, target in facts.targets.items() if target == str(tmp_path / "x")]
    assert facts.xfs[xdevice].blocks == 300 * MiB // 4096
    inodes = {row.target: row for row in facts.inodes}
    assert inodes[str(tmp_path / "e")].total == 1024


def test_collected_output_with_a_failed_device_keeps_the_rest() -> None:
    out = (
        f"{MARK}df exit=0\n"
        "Filesystem Type 1-blocks Used Available Capacity Mounted on\n"
        "/dev/sdb1 ext4 1000 10 990 1% /data\n"
        f"{MARK}df-inodes exit=0\n"
        "Filesystem Type Inodes IUsed IFree IUse% Mounted on\n"
        "/dev/sdb1 ext4 64 11 53 18% /data\n"
        f"{MARK}tune2fs exit=1 /dev/sdb1 /data\n"
        "tune2fs: Permission denied while trying to open /dev/sdb1\n"
        f"{MARK}xfs_info exit=0 /dev/sdc1 /srv/my data\n"
        f"{OLD_XFS_INFO}"
    )
    facts = parse_collected(out)
    assert facts.space == [DfSpace("/dev/sdb1", "ext4", 1000, 10, 990, "/data")]
    assert facts.inodes[0].used == 11
    assert facts.ext == {}
    assert facts.problems == [
        "tune2fs /dev/sdb1: exit 1: tune2fs: Permission denied while trying to open /dev/sdb1"
    ]
    assert facts.targets == {"/dev/sdc1": "/srv/my data"}
    assert facts.xfs["/dev/sdc1"].agcount == 4


@pytest.mark.parametrize(
    ("out", "where", "problem"),
    [
        ("hello\n", "line 1", "output before the first section"),
        (f"{MARK}df-inodes exit=0\nFilesystem Inodes IUsed IFree IUse% Mounted on\n", "", "no df"),
        (f"{MARK}df\n", "line 1", "bad section header"),
        (
            f"{MARK}df exit=0\nFilesystem 1-blocks Used Available Capacity Mounted on\n"
            f"{MARK}tune2fs exit=0 /dev/sdb1 /data\nInode count: 5\n",
            "tune2fs /dev/sdb1 (section at line 3)",
            "Free inodes",
        ),
    ],
)
def test_output_that_is_not_the_operations_is_refused(out: str, where: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as caught:
        parse_collected(out)
    assert caught.value.where == where
