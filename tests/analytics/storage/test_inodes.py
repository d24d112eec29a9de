"""Inode provisioning on real ext4 images: the savings the analysis finds are the ones its
commands give when run on the image, and the expected figures are worked out here from what
mke2fs documents, not from the analysis."""

from __future__ import annotations

import shlex
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from fleetops.analytics.storage.facts import DfInodes, Ext4Superblock, HostFacts, parse_tune2fs
from fleetops.analytics.storage.inodes import (
    Filesystem,
    Finding,
    Policy,
    Report,
    analyze,
    analyze_fleet,
    by_host,
    by_model,
    filesystems,
)
from tests.analytics.storage.trees import ext4_image, needs_e2fsprogs, tool

pytestmark = needs_e2fsprogs
MiB = 1024 * 1024


def superblock_of(img: Path) -> Ext4Superblock:
    return parse_tune2fs(tool("tune2fs", "-l", img))


def report_for(img: Path, mount: str = "/data/1", policy: Policy | None = None) -> Report:
    sb = superblock_of(img)
    fs = Filesystem("dn1", str(img), mount, "ext4", sb.inode_count, sb.used_inodes, sb)
    (report,) = analyze([fs], policy=policy)
    return report


def finding(report: Report, kind: str) -> Finding | None:
    found = [f for f in report.findings if f.kind == kind]
    return found[0] if found else None


def inode_count_after(command: str, device: str, tmp_path: Path, size: int) -> int:
    """Run a re-provisioning command for real, on a fresh file of the same size."""
    fresh = tmp_path / "reformatted"
    with fresh.open("wb") as f:
        f.truncate(size)
    words = [str(fresh) if w == device else w for w in shlex.split(command)]
    tool(words[0], "-F", "-q", *words[1:])
    return superblock_of(fresh).inode_count


def test_inode_tables_of_a_large_ratio_image_and_what_fewer_would_free(tmp_path: Path) -> None:
    img = ext4_image(tmp_path / "img", "64M", "-i", "65536", "-m", "5")
    report = report_for(img)
    # 64 MiB at one inode per 65,536 bytes: 1,024 inodes of 256 bytes
    assert report.inode_table_bytes == 1024 * 256 == 262_144
    # 11 in use (1-10 reserved, 11 lost+found); 2x headroom wants 22. mke2fs makes at least
    # 8 inodes per group (a multiple of 8), and 64 MiB of 1 KiB blocks is 8 groups of 8,192
    # blocks: 64 inodes is the fewest, first reached at -i 1 MiB (64 MiB / 1 MiB = 64).
    assert report.inodes_needed == 22
    inodes = finding(report, "inode_tables")
    assert inodes is not None
    assert inodes.saving_bytes == (1024 - 64) * 256 == 245_760
    assert inodes.command == f"mkfs.ext4 -i 1048576 -I 256 {img}"
    assert inodes.reformat
    assert inode_count_after(inodes.command, str(img), tmp_path, 64 * MiB) == 64


def test_reserved_blocks_beyond_one_percent_are_given_back_online(tmp_path: Path) -> None:
    img = ext4_image(tmp_path / "img", "64M", "-i", "65536", "-m", "5")
    report = report_for(img)
    # 5 % of 65,536 blocks, truncated (mke2fs): 3,276; at 1 %: 655; 2,621 blocks of 1 KiB
    assert report.reserved_bytes == 3276 * 1024
    reserve = finding(report, "reserved_blocks")
    assert reserve is not None
    assert reserve.saving_bytes == (3276 - 655) * 1024 == 2_683_904
    assert reserve.command == f"tune2fs -m 1 {img}"
    assert not reserve.reformat
    before = superblock_of(img).reserved_block_count
    subprocess.run(shlex.split(reserve.command), check=True, capture_output=True)
    after = superblock_of(img).reserved_block_count
    assert (before - after) * 1024 == reserve.saving_bytes
    assert finding(report_for(img), "reserved_blocks") is None  # nothing left to give back


def test_a_fractional_target_is_set_as_a_block_count(tmp_path: Path) -> None:
    img = ext4_image(tmp_path / "img", "64M", "-m", "5")
    report = report_for(img, policy=Policy(reserved_percent=Fraction(1, 2)))
    reserve = finding(report, "reserved_blocks")
    assert reserve is not None
    # 0.5 % of 65,536 blocks = 327.68, truncated as tune2fs -m truncates: 327
    assert reserve.command == f"tune2fs -r 327 {img}"
    assert reserve.saving_bytes == (3276 - 327) * 1024
    subprocess.run(shlex.split(reserve.command), check=True, capture_output=True)
    assert superblock_of(img).reserved_block_count == 327


def test_a_system_mount_keeps_its_reserve(tmp_path: Path) -> None:
    img = ext4_image(tmp_path / "img", "64M", "-m", "5")
    assert finding(report_for(img, mount="/"), "reserved_blocks") is None
    assert finding(report_for(img, mount="/var"), "reserved_blocks") is None
    assert finding(report_for(img, mount="/data"), "reserved_blocks") is not None


def test_an_inode_count_asked_for_is_rounded_as_mke2fs_does(tmp_path: Path) -> None:
    img = ext4_image(tmp_path / "img", "64M", "-N", "2000")
    sb = superblock_of(img)
    # 2,000 over 8 groups is 250 a group; whole 1 KiB inode-table blocks of 4 inodes make 252;
    # down to a multiple of 8 makes 248: 8 x 248 = 1,984
    assert sb.inode_count == 1984
    inodes = finding(report_for(img), "inode_tables")
    assert inodes is not None
    assert inodes.saving_bytes == (1984 - 64) * 256 == 491_520


def test_a_populated_image_keeps_room_for_twice_its_files(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for d in range(4):
        (source / f"d{d}").mkdir(parents=True)
        for i in range(125):
            (source / f"d{d}" / f"f{i}").write_bytes(b"z")
    img = ext4_image(tmp_path / "img", "64M", "-d", source)
    sb = superblock_of(img)
    # mke2fs.conf "small": one inode per 4 KiB: 16,384; used: 11 + 4 dirs + 500 files
    assert (sb.inode_count, sb.used_inodes) == (16_384, 515)
    report = report_for(img)
    assert report.inodes_needed == 1030
    inodes = finding(report, "inode_tables")
    assert inodes is not None
    # -i 65,536 makes 1,024 (too few for 1,030); -i 32,768 makes 2,048
    assert inodes.command == f"mkfs.ext4 -i 32768 -I 256 {img}"
    assert inodes.saving_bytes == (16_384 - 2048) * 256 == 3_670_016
    assert inode_count_after(inodes.command, str(img), tmp_path, 64 * MiB) == 2048
    # with 1.5x headroom (773 wanted) the 1,024 of -i 65,536 are enough
    relaxed = finding(report_for(img, policy=Policy(headroom=Fraction(3, 2))), "inode_tables")
    assert relaxed is not None
    assert relaxed.saving_bytes == (16_384 - 1024) * 256 == 3_932_160


def test_a_filesystem_short_of_inodes_is_flagged_not_shrunk(tmp_path: Path) -> None:
    img = ext4_image(tmp_path / "img", "8M", "-N", "16")
    sb = superblock_of(img)
    assert (sb.inode_count, sb.used_inodes) == (16, 11)  # one group of 16
    report = report_for(img)
    assert report.short  # 22 wanted
    assert finding(report, "inode_tables") is None


def test_dynamic_inode_filesystems_have_no_tables_to_shrink() -> None:
    xfs = Filesystem("dn1", "/dev/sdc1", "/data/2", "xfs", 1_000_000, 900_000)
    (report,) = analyze([xfs])
    assert (report.inode_table_bytes, report.reserved_bytes, report.findings) == (0, 0, ())
    assert not report.short


def test_facts_become_filesystems_with_df_s_live_inode_use(tmp_path: Path) -> None:
    sb = superblock_of(ext4_image(tmp_path / "img", "64M", "-i", "65536"))
    facts = HostFacts(
        inodes=[
            DfInodes("/dev/sdb1", "ext4", 1024, 40, 984, "/data/1"),
            DfInodes("/dev/sdc1", "xfs", 500, 7, 493, "/data/2"),
        ],
        ext={"/dev/sdb1": sb, "/dev/sdd1": sb},
        targets={"/dev/sdb1": "/data/1", "/dev/sdd1": "/data/3"},
    )
    found = {fs.device: fs for fs in filesystems("dn1", facts)}
    assert (found["/dev/sdb1"].inodes_used, found["/dev/sdb1"].superblock) == (40, sb)
    assert (found["/dev/sdc1"].fstype, found["/dev/sdc1"].superblock) == ("xfs", None)
    assert (found["/dev/sdd1"].mount, found["/dev/sdd1"].inodes_used) == ("/data/3", 11)
    assert found["/dev/sdd1"].fstype == "ext4"


def test_savings_add_up_per_host_and_per_model(tmp_path: Path) -> None:
    sb = superblock_of(ext4_image(tmp_path / "img", "64M", "-i", "65536", "-m", "5"))
    # per disk: 245,760 (inode tables) + 2,683,904 (reserve) = 2,929,664 bytes
    fleet = analyze_fleet(
        {
            host: HostFacts(
                inodes=[DfInodes(f"/dev/sd{d}", "ext4", 1024, 11, 1013, f"/d{d}") for d in disks],
                ext={f"/dev/sd{d}": sb for d in disks},
                problems=["tune2fs /dev/sdz: exit 1: denied"] if host == "c" else [],
            )
            for host, disks in {"a": "bc", "b": "b", "c": "bcd"}.items()
        }
    )
    hosts = by_host(fleet.reports)
    assert {h: (t.filesystems, t.saving_bytes) for h, t in hosts.items()} == {
        "a": (2, 2 * 2_929_664),
        "b": (1, 2_929_664),
        "c": (3, 3 * 2_929_664),
    }
    assert hosts["c"].inode_table_bytes == 3 * 262_144
    assert (hosts["c"].reformats, hosts["c"].reserved_saving_bytes) == (3, 3 * 2_683_904)
    models = by_model(fleet.reports, {"a": "R740xd", "c": "R740xd"})
    assert {m: t.saving_bytes for m, t in models.items()} == {
        "R740xd": 5 * 2_929_664,
        "(no model)": 2_929_664,
    }
    assert fleet.problems == {"c": ["tune2fs /dev/sdz: exit 1: denied"]}


@pytest.mark.parametrize("headroom", [Fraction(1), Fraction(2), Fraction(10)])
def test_the_chosen_ratio_always_holds_the_headroom(tmp_path: Path, headroom: Fraction) -> None:
    img = ext4_image(tmp_path / "img", "64M")
    report = report_for(img, policy=Policy(headroom=headroom))
    inodes = finding(report, "inode_tables")
    assert inodes is not None
    made = inode_count_after(inodes.command, str(img), tmp_path, 64 * MiB)
    assert made >= 11 * headroom
    assert inodes.saving_bytes == (16_384 - made) * 256
