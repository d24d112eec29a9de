"""One real filesystem, end to end: an ext4 image made in a file with known inode settings and an
HDFS-style trash inside it (`mkfs.ext4 -N ... -d TREE`), loop-mounted; the `filesystem_facts`
operation and `fleetops storage analyze` read it as they would a host's disk, and every saving
is checked against a figure found another way (the image the proposed command makes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.analytics.storage.facts import parse_collected, parse_tune2fs
from fleetops.analytics.storage.inodes import FIRST_INODE, analyze_fleet
from tests.analytics.storage.test_facts import operation_script
from tests.analytics.storage.trees import ext4_image, needs_e2fsprogs, tool, trash_tree

INODES, BLOCKS, BLOCK = 4096, 8192, 1024  # -N 4096 on 8 MiB of 1 KiB blocks: one group


@needs_e2fsprogs
def test_an_ext4_image_with_trash_layers_gives_exact_savings(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("loop-mounting an image needs root and unshare")
    tree = trash_tree(tmp_path / "tree")
    image = ext4_image(
        tmp_path / "fs.img", "8M", "-b", str(BLOCK), "-I", "256", "-N", str(INODES),
        "-m", "5", "-d", tree.root,
    )  # fmt: skip
    mount = tmp_path / "hdfs"
    mount.mkdir()
    facts_out, report_out = tmp_path / "facts.out", tmp_path / "report.json"
    analyze = f"{sys.executable} -m fleetops storage analyze {mount} -o json > {report_out}"
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"mount -o loop,ro {image} {mount} || exit 97; "
         f"( {operation_script()} ) > {facts_out} && {analyze}"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    if done.returncode == 97:
        pytest.skip(f"cannot loop-mount here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr

    # inodes: the image's own superblock, read through the operation as on a host
    facts = parse_collected(facts_out.read_text())
    (report,) = [r for r in analyze_fleet({"h": facts}).reports if r.filesystem.mount == str(mount)]
    fs = report.filesystem
    assert (fs.fstype, fs.inodes_total) == ("ext4", INODES)
    # inodes 1-11 (the root, 2, among them; lost+found, 11), then a dir or file each
    assert fs.inodes_used == FIRST_INODE + len(tree.dirs) - 1 + len(tree.files)
    assert report.inode_table_bytes == INODES * 256
    tables, reserve = report.findings
    # what the proposed mkfs makes, made: its inode count is the saving's other side
    ratio = int(tables.command.split(" -i ")[1].split()[0])
    remade = ext4_image(
        tmp_path / "remade.img", "8M", "-b", str(BLOCK), "-I", "256", "-i", str(ratio)
    )
    fewer = parse_tune2fs(tool("tune2fs", "-l", remade)).inode_count
    assert fewer >= 2 * fs.inodes_used  # room for twice the files
    assert tables.saving_bytes == (INODES - fewer) * 256
    # 5 % of 8,192 blocks reserved (409, truncated), 1 % kept (81): 328 blocks of 1 KiB back
    assert reserve.saving_bytes == (409 - 81) * BLOCK
    assert reserve.command == f"tune2fs -m 1 {fs.device}"

    # the trash inside the image: alice's Current (1,000 + 4,096 + the 512 of a trash deleted
    # into it), her checkpoint of 2,048 long past a day's retention, bob's Current of 10,000
    found = json.loads(report_out.read_text())
    assert found["totals"]["files"] == len(tree.files)
    assert found["totals"]["bytes"] == sum(tree.files.values())
    bins = {b["user"]: b for b in found["recycle_bins"]["bins"]}
    assert bins["alice"]["current_bytes"] == 1000 + 4096 + 512
    assert (bins["alice"]["checkpoints"], bins["alice"]["checkpoint_bytes"]) == (1, 2048)
    assert bins["alice"]["layered_bytes"] == 512
    assert bins["bob"]["current_bytes"] == 10_000
    assert found["recycle_bins"]["over_retention_raw_bytes"] == 2048
    savings = {f["kind"]: f["savings_bytes"] for f in found["findings"]}
    assert savings["trash_retention"] == 2048
    assert savings["layered_trash"] == 512
