"""Binary fsimages read without Hadoop: the shared images give hfsa's published figures, every
codec reads the same namespace, and each kind of bad image fails precisely, leaving no file."""

from __future__ import annotations

import bz2
import gzip
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cramjam
import duckdb
import pytest

from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.exceptions import InputError
from fleetops.analytics.storage.fsimage import ImageSummary, read_fsimage
from fleetops.analytics.storage.fsimage_format import MAGIC, message_class
from fleetops.analytics.storage.readers import read_input

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "fsimage"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} (the shared data) is absent")
HADOOP = "org.apache.hadoop.io.compress."

# Expected figures, each from the hfsa project (github.com/marcelmay/hfsa, Apache-2.0), whose
# test resources these images are. hfsa counts the root as a directory; so do we.
EXPECTED = {
    # tool/README.md and tool/src/test/java/.../SummaryReportCommandTest.java (summary of
    # fsi_small.img): 3 groups, 3 users, 8 directories, 0 symlinks, 11 files, 12 blocks,
    # "Size [MB] 331": the CSV export in tool/README.md gives the bytes, 348019712, which is
    # 331.9 * 2**20 (MiB, floored), not 10**6 bytes (that would be 348 MB).
    "fsi_small.img": {
        "files": 11,
        "directories": 8,
        "symlinks": 0,
        "bytes": 348_019_712,
        "blocks": 12,
        "users": 3,
        "groups": 3,
    },
    # lib/src/test/java/.../FsImageLoaderTest.java, loadAndVisit (h2x: testLoadHadoop27xFsImage;
    # h3_2: setUp): 3 users, 3 groups, 14 directories, 16 files, 0 symlinks, 356417536 bytes.
    "fsi_small_h2x.img": {
        "files": 16,
        "directories": 14,
        "symlinks": 0,
        "bytes": 356_417_536,
        "users": 3,
        "groups": 3,
    },
    "fsi_small_h3_2.img": {
        "files": 16,
        "directories": 14,
        "symlinks": 0,
        "bytes": 356_417_536,
        "users": 3,
        "groups": 3,
    },
    # FsImageLoaderTest.testLoadEmptyFSImage: only the root is visited.
    "fsimage_0000000000000000000": {"files": 0, "directories": 1, "symlinks": 0, "bytes": 0},
    # FsImageLoaderTest.testLoadHadoop33xCompressedFsImage: 1 group, 1 user, 209560 files,
    # 807 directories, 0 symlinks.
    "fsimage_d800_f210k_compressed.img": {
        "files": 209_560,
        "directories": 807,
        "symlinks": 0,
        "users": 1,
        "groups": 1,
    },
}
# FsImageLoaderTest.loadAndVisit: the 14 directory paths of fsi_small_h3_2.img (and h2x).
H3_DIRECTORIES = {
    "/", "/test1", "/test2", "/test3", "/test3/foo", "/test3/foo/bar", "/user", "/user/mm",
    "/datalake", "/datalake/asset1", "/datalake/asset2", "/datalake/asset3",
    "/datalake/asset3/subasset1", "/datalake/asset3/subasset2",
}  # fmt: skip


def read(image: Path, tmp_path: Path) -> tuple[ImageSummary, Path]:
    out = tmp_path / f"{image.name}.parquet"
    with EntryWriter(out) as writer:
        summary = read_fsimage(image, writer)
    return summary, out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_shared_image_gives_hfsa_figures(name: str, tmp_path: Path) -> None:
    summary, out = read(DATA / name, tmp_path)
    for key, value in EXPECTED[name].items():
        assert getattr(summary, key) == value, key
    assert summary.unreachable == 0
    counts = duckdb.sql(
        f"select count(*) filter (kind = 'file'), count(*) filter (kind = 'dir'), "
        f"coalesce(sum(size), 0), count(distinct owner) from '{out}'"
    ).fetchall()[0]
    assert counts == (summary.files, summary.directories, summary.bytes, summary.users)


def test_layout_and_codec_are_reported(tmp_path: Path) -> None:
    # layout versions as each image's FileSummary says (-63: Hadoop 2.7; -65: Hadoop 3.2+)
    assert read(DATA / "fsi_small.img", tmp_path)[0].layout_version == -63
    compressed, _ = read(DATA / "fsimage_d800_f210k_compressed.img", tmp_path)
    assert (compressed.layout_version, compressed.codec) == (-65, f"{HADOOP}DefaultCodec")
    assert compressed.inodes == 209_560 + 807


def test_paths_replication_and_owners_of_a_hadoop_3_image(tmp_path: Path) -> None:
    _, out = read(DATA / "fsi_small_h3_2.img", tmp_path)
    rows = {r[0]: r[1:] for r in duckdb.sql(f"select * from '{out}'").fetchall()}
    assert {p for p, r in rows.items() if r[0] == "dir"} == H3_DIRECTORIES
    # FsImageLoaderTest: replication 1, 3 and 5; README listing: /test3/test_160MiB.img is
    # foo:nobody in 2 blocks (its inode example), /test3/foo/test_1KiB.img is root:root.
    assert [rows[f"/test3/foo/bar/test_{s}.img"][2] for s in ("40MiB", "80MiB", "4MiB")] == [
        1,
        3,
        5,
    ]
    big = rows["/test3/test_160MiB.img"]
    assert (big[1], big[3], big[6], big[7]) == (167_772_160, 2, "foo", "nobody")
    assert rows["/test3/foo/test_1KiB.img"][6:] == ("root", "root")
    assert rows["/"][:1] + rows["/"][5:6] == ("dir", None)  # a directory has no access time


def test_read_input_detects_every_image(tmp_path: Path) -> None:
    for name, expected in EXPECTED.items():
        out = tmp_path / f"{name}.parquet"
        summary = read_input(DATA / name, out)
        assert (summary.kind, summary.files) == ("fsimage", expected["files"])
        assert summary.entries == summary.files + summary.directories + summary.symlinks


# --- images rebuilt: other codecs, patched summaries ---------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def summary_of(image: bytes) -> Any:
    (length,) = struct.unpack(">I", image[-4:])
    body = image[-4 - length : -4]
    size, skip = 0, 0
    while True:
        size |= (body[skip] & 0x7F) << (7 * skip)
        skip += 1
        if body[skip - 1] < 0x80:
            break
    return message_class("FileSummary").FromString(body[skip : skip + size])


def rebuild(
    image: bytes,
    *,
    compress: Callable[[bytes], bytes] | None = None,
    codec: str = "",
    edit: Callable[[Any], None] | None = None,
) -> bytes:
    """The uncompressed `image` with its sections compressed and its FileSummary edited."""
    summary = summary_of(image)
    assert not summary.codec
    out = bytearray(MAGIC)
    sections = [(s.name, image[s.offset : s.offset + s.length]) for s in summary.sections]
    del summary.sections[:]
    for name, data in sections:
        stored = compress(data) if compress else data
        summary.sections.add(name=name, offset=len(out), length=len(stored))
        out += stored
    summary.codec = codec.encode()
    if edit:
        edit(summary)
    body = summary.SerializeToString()
    trunk = varint(len(body)) + body
    return bytes(out + trunk + struct.pack(">I", len(trunk)))


def hadoop_blocks(compress: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """Hadoop's BlockCompressorStream framing, with small blocks and chunks so that a section
    spans several of each."""

    def framed(data: bytes) -> bytes:
        out = bytearray()
        for start in range(0, len(data), 200):
            block = data[start : start + 200]
            out += struct.pack(">I", len(block))
            for at in range(0, len(block), 64):
                chunk = compress(block[at : at + 64])
                out += struct.pack(">I", len(chunk)) + chunk
        return bytes(out)

    return framed


def two_zlib_streams(data: bytes) -> bytes:
    """A section saved in parallel sub-sections: each its own compressed stream."""
    half = len(data) // 2
    return zlib.compress(data[:half]) + zlib.compress(data[half:])


CODECS: dict[str, Callable[[bytes], bytes]] = {
    "DefaultCodec": zlib.compress,
    "GzipCodec": gzip.compress,
    "BZip2Codec": bz2.compress,
    "SnappyCodec": hadoop_blocks(lambda b: bytes(cramjam.snappy.compress_raw(b))),
    "Lz4Codec": hadoop_blocks(lambda b: bytes(cramjam.lz4.compress_block(b, store_size=False))),
}


def rows_of(out: Path) -> list[tuple[Any, ...]]:
    return duckdb.sql(f"select * from '{out}' order by path").fetchall()


@pytest.mark.parametrize("codec", [*CODECS, "sub-sections"])
def test_every_codec_reads_the_same_namespace(codec: str, tmp_path: Path) -> None:
    plain = (DATA / "fsi_small_h3_2.img").read_bytes()
    compress = two_zlib_streams if codec == "sub-sections" else CODECS[codec]
    name = "DefaultCodec" if codec == "sub-sections" else codec
    image = tmp_path / "image"
    image.write_bytes(rebuild(plain, compress=compress, codec=HADOOP + name))
    summary, out = read(image, tmp_path)
    (tmp_path / "plain").mkdir()
    _, expected = read(DATA / "fsi_small_h3_2.img", tmp_path / "plain")
    assert summary.codec == HADOOP + name
    assert rows_of(out) == rows_of(expected)


def fails(image: bytes, tmp_path: Path, match: str) -> InputError:
    source, out = tmp_path / "bad.img", tmp_path / "bad.parquet"
    source.write_bytes(image)
    with pytest.raises(InputError, match=match) as caught:
        read_input(source, out, kind="fsimage")
    assert not out.exists(), "a failed read leaves no partial file"
    return caught.value


def test_a_file_without_the_magic_is_not_an_fsimage(tmp_path: Path) -> None:
    image = (DATA / "fsi_small.img").read_bytes()
    error = fails(b"HDFSIMG2" + image[8:], tmp_path, "not an HDFS fsimage")
    assert error.where == "bad.img"


@pytest.mark.parametrize("cut", [4, 100, 1000, 1400, 1600, 1650])
def test_a_truncated_image_says_so(cut: int, tmp_path: Path) -> None:
    image = (DATA / "fsi_small.img").read_bytes()
    fails(image[:cut], tmp_path, "truncated")


def test_a_section_past_the_end_is_truncation(tmp_path: Path) -> None:
    def longer(summary: Any) -> None:
        summary.sections[1].length += 10_000  # INODE

    image = rebuild((DATA / "fsi_small.img").read_bytes(), edit=longer)
    fails(image, tmp_path, r"truncated: section INODE \(offset 31, length 11229\) runs past")


def test_a_cut_varint_names_section_and_offset(tmp_path: Path) -> None:
    image = bytearray((DATA / "fsi_small.img").read_bytes())
    summary = summary_of(bytes(image))
    inode = next(s for s in summary.sections if s.name == b"INODE")
    end = inode.offset + inode.length
    image[end - 1] = 0x80  # the section's last byte now promises another varint byte
    error = fails(bytes(image), tmp_path, "truncated|corrupt")
    assert "section INODE at offset" in error.where


def test_a_flipped_byte_in_a_compressed_section_is_corrupt(tmp_path: Path) -> None:
    image = bytearray((DATA / "fsimage_d800_f210k_compressed.img").read_bytes())
    image[72 + 5000] ^= 0xFF  # inside the INODE section (offset 72, zlib)
    error = fails(bytes(image), tmp_path, "corrupt compressed data")
    assert error.where == "bad.img: section INODE"


def test_a_flipped_inode_count_is_precise(tmp_path: Path) -> None:
    image = bytearray((DATA / "fsi_small.img").read_bytes())
    # INODE at 31: [len][0x08 lastInodeId varint...][0x10 numInodes=19]
    at = image.index(bytes([0x10, 19]), 31)
    image[at + 1] = 20
    fails(bytes(image), tmp_path, "truncated: the section ends before its 20 inodes")


def test_any_flipped_byte_is_read_or_refused_never_a_crash(tmp_path: Path) -> None:
    plain = (DATA / "fsi_small.img").read_bytes()
    source, out = tmp_path / "bad.img", tmp_path / "bad.parquet"
    refused = 0
    for at in range(31, 31 + 1229 + 89):  # the INODE and INODE_DIR sections
        image = bytearray(plain)
        image[at] ^= 0xFF
        source.write_bytes(bytes(image))
        try:
            read_input(source, out, kind="fsimage")
        except InputError:
            refused += 1
            assert not out.exists()
    assert refused > 100


def test_an_unknown_codec_is_named(tmp_path: Path) -> None:
    image = rebuild((DATA / "fsi_small.img").read_bytes(), codec=f"{HADOOP}ZStandardCodec")
    error = fails(
        image, tmp_path, "codec org.apache.hadoop.io.compress.ZStandardCodec is not supported"
    )
    assert "SnappyCodec" in error.problem
    assert error.where == "bad.img: FileSummary"


@pytest.mark.parametrize("layout", [-51, -68, 1])
def test_an_unsupported_layout_version_says_the_range(layout: int, tmp_path: Path) -> None:
    def patch(summary: Any) -> None:
        summary.layoutVersion = layout & 0xFFFFFFFF

    image = rebuild((DATA / "fsi_small.img").read_bytes(), edit=patch)
    fails(image, tmp_path, f"layout version {layout} .*not supported.* -52 .* to -67")


def test_a_missing_section_is_named(tmp_path: Path) -> None:
    def rename(summary: Any) -> None:
        for section in summary.sections:
            if section.name == b"INODE_DIR":
                section.name = b"INODE_DIRECTORIES"

    image = rebuild((DATA / "fsi_small.img").read_bytes(), edit=rename)
    fails(image, tmp_path, "required section INODE_DIR is missing")


def test_a_corrupt_summary_is_refused(tmp_path: Path) -> None:
    image = bytearray((DATA / "fsi_small.img").read_bytes())
    (length,) = struct.unpack(">I", image[-4:])
    image[-4 - length] ^= 0x40  # the summary's own delimiter no longer matches its length
    fails(bytes(image), tmp_path, "truncated or corrupt: no readable FileSummary in the last")


def test_a_corrupt_section_name_is_a_missing_section(tmp_path: Path) -> None:
    image = bytearray((DATA / "fsi_small.img").read_bytes())
    image[image.rindex(b"STRING_TABLE") + 1] ^= 0xFF
    fails(bytes(image), tmp_path, "required section STRING_TABLE is missing")
