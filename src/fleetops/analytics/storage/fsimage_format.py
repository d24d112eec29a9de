"""The on-disk layout of a protobuf HDFS fsimage: its messages, its codecs, its sections.

An image is `HDFSIMG1`, sections, a varint-delimited `FileSummary` (the codec and each section's
name, offset and length) and that summary's length in the last 4 bytes (big-endian). Each
section is a run of varint-delimited messages; with a codec, each section (and each parallel
sub-section inside it) is a compressed stream of its own.

The messages are those of Hadoop's `fsimage.proto` and `hdfs.proto` (`BlockProto`), described
to the protobuf library here, at first use, by their field numbers: the library (upb, in C)
still does the decoding, and there is no generated module or `protoc` step to keep in step with
it. Only the fields fleetops reads are declared; the rest (ACLs, xattrs, quotas by storage type,
erasure-coding policy ids...) are skipped as unknown fields. INode types are declared as plain
integers rather than an enum, so a type a newer Hadoop adds is seen and skipped, not dropped.
The delimiting varints are read here (a few lines), since the library reads only whole messages.
"""

from __future__ import annotations

import bz2
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import IO, Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from fleetops.analytics.storage.exceptions import InputError
from fleetops.kit.protobuf import message_pool

MAGIC = b"HDFSIMG1"
ONDISK_VERSION = 1
# Layout versions are negative and grow downwards. -52 (PROTOBUF_FORMAT, Hadoop 2.4) is the first
# protobuf image; -67 (NVDIMM_SUPPORT, Hadoop 3.4) the newest Hadoop defines. Every feature in
# between only adds fields this reader skips; the images at hand are -63 (Hadoop 2.7) and -65
# (Hadoop 3.2, 3.3). A newer version may change what the read fields mean, so it is refused.
NEWEST_LAYOUT, OLDEST_LAYOUT = -67, -52
READ_BYTES = 1 << 20  # compressed or plain bytes read from the file at a time
OUT_BYTES = 4 << 20  # decompressed bytes produced at a time
MAX_MESSAGE = 256 << 20  # Hadoop keeps each message under protobuf's 64 MiB default limit
INODE_FILE, INODE_DIRECTORY, INODE_SYMLINK = 1, 2, 3

_F = descriptor_pb2.FieldDescriptorProto
# Strings are declared as bytes: a corrupt one is then refused here, by name, when decoded.
_U32, _U64, _F64, _BYTES, _MSG = (
    _F.TYPE_UINT32,
    _F.TYPE_UINT64,
    _F.TYPE_FIXED64,
    _F.TYPE_BYTES,
    _F.TYPE_MESSAGE,
)
_REQ, _OPT, _REP = _F.LABEL_REQUIRED, _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
# message -> (field, number, type, label, message type); numbers from fsimage.proto
_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    "FileSummary": [
        ("ondiskVersion", 1, _U32, _REQ, ""),
        ("layoutVersion", 2, _U32, _REQ, ""),
        ("codec", 3, _BYTES, _OPT, ""),
        ("sections", 4, _MSG, _REP, "Section"),
    ],
    "Section": [
        ("name", 1, _BYTES, _OPT, ""),
        ("length", 2, _U64, _OPT, ""),
        ("offset", 3, _U64, _OPT, ""),
    ],
    "INodeSection": [("lastInodeId", 1, _U64, _OPT, ""), ("numInodes", 2, _U64, _OPT, "")],
    "BlockProto": [
        ("blockId", 1, _U64, _REQ, ""),
        ("genStamp", 2, _U64, _REQ, ""),
        ("numBytes", 3, _U64, _OPT, ""),
    ],
    "INodeFile": [
        ("replication", 1, _U32, _OPT, ""),
        ("modificationTime", 2, _U64, _OPT, ""),
        ("accessTime", 3, _U64, _OPT, ""),
        ("permission", 5, _F64, _OPT, ""),
        ("blocks", 6, _MSG, _REP, "BlockProto"),
    ],
    "INodeDirectory": [("modificationTime", 1, _U64, _OPT, ""), ("permission", 4, _F64, _OPT, "")],
    "INodeSymlink": [
        ("permission", 1, _F64, _OPT, ""),
        ("modificationTime", 3, _U64, _OPT, ""),
        ("accessTime", 4, _U64, _OPT, ""),
    ],
    "INode": [
        ("type", 1, _U32, _REQ, ""),
        ("id", 2, _U64, _REQ, ""),
        ("name", 3, _BYTES, _OPT, ""),
        ("file", 4, _MSG, _OPT, "INodeFile"),
        ("directory", 5, _MSG, _OPT, "INodeDirectory"),
        ("symlink", 6, _MSG, _OPT, "INodeSymlink"),
    ],
    "DirEntry": [
        ("parent", 1, _U64, _OPT, ""),
        ("children", 2, _U64, _REP, ""),
        ("refChildren", 3, _U32, _REP, ""),
    ],
    "INodeReference": [("referredId", 1, _U64, _OPT, ""), ("name", 2, _BYTES, _OPT, "")],
    "StringTableSection": [("numEntry", 1, _U32, _OPT, ""), ("maskBits", 2, _U32, _OPT, "")],
    "StringEntry": [("id", 1, _U32, _OPT, ""), ("str", 2, _BYTES, _OPT, "")],
}


@cache
def message_class(name: str) -> Any:
    """The class of one fsimage message (a key of `_MESSAGES`), built once, in a pool of its own."""
    return message_factory.GetMessageClass(
        _pool().FindMessageTypeByName(f"hadoop.hdfs.fsimage.{name}")
    )


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    return message_pool("fleetops/hdfs_fsimage.proto", "hadoop.hdfs.fsimage", "proto2", _MESSAGES)


def parse(name: str, data: bytes, stream: MessageStream, offset: int) -> Any:
    """`data` as message `name`; a corrupt message is an InputError saying where it was."""
    message: Message = message_class(name)()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise InputError(f"corrupt {name} message: {exc}", where=stream.where(offset)) from None
    return message


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Image:
    """An opened image: where its sections are and how they are compressed."""

    label: str  # the file name, for messages
    file: IO[bytes]
    size: int
    layout_version: int
    codec: str  # "" when the sections are not compressed
    sections: dict[str, Section]

    def section(self, name: str) -> Section:
        found = self.sections.get(name)
        if found is None:
            have = ", ".join(self.sections) or "none"
            raise InputError(
                f"required section {name} is missing (sections: {have})", where=self.label
            )
        return found

    def messages(self, name: str) -> MessageStream:
        """The delimited messages of section `name`, decompressed as they are read."""
        section = self.section(name)
        self.file.seek(section.offset)
        raw = _file_chunks(self.file, section.length)
        if not self.codec:
            return MessageStream(raw, label=f"{self.label}: section {name}", base=section.offset)
        chunks = _DECOMPRESSORS[self.codec](raw, f"{self.label}: section {name}")
        return MessageStream(
            chunks, label=f"{self.label}: section {name}", base=0, decompressed=True
        )


def open_image(file: IO[bytes], *, label: str, size: int) -> Image:
    """Check the magic, read the FileSummary at the end and check what it says."""
    head = file.read(len(MAGIC))
    if len(head) < len(MAGIC) and MAGIC.startswith(head):
        raise InputError(f"truncated: {size} bytes, too short for an fsimage", where=label)
    if head != MAGIC:
        raise InputError(
            f"not an HDFS fsimage: it does not start with {MAGIC.decode()}", where=label
        )
    summary = _read_summary(file, label=label, size=size)
    layout = _signed32(summary.layoutVersion)
    if summary.ondiskVersion != ONDISK_VERSION or not NEWEST_LAYOUT <= layout <= OLDEST_LAYOUT:
        raise InputError(
            f"layout version {layout} (on-disk version {summary.ondiskVersion}) is not supported: "
            f"this reader knows layout versions {OLDEST_LAYOUT} (Hadoop 2.4, the first protobuf "
            f"image) to {NEWEST_LAYOUT} (Hadoop 3.4), on-disk version {ONDISK_VERSION}",
            where=f"{label}: FileSummary",
        )
    codec = summary.codec.decode("utf-8", errors="replace")
    if codec and codec not in _DECOMPRESSORS:
        raise InputError(
            f"codec {codec} is not supported (supported: {', '.join(_DECOMPRESSORS)})",
            where=f"{label}: FileSummary",
        )
    sections: dict[str, Section] = {}
    for s in summary.sections:
        name = s.name.decode("utf-8", errors="replace")  # a corrupt name is a missing section
        sections[name] = Section(name, s.offset, s.length)
    end = size - 4
    for s in sections.values():
        if s.offset < len(MAGIC) or s.offset + s.length > end:
            raise InputError(
                f"truncated: section {s.name} (offset {s.offset}, length {s.length}) runs past "
                f"the sections' end at {end}",
                where=f"{label}: FileSummary",
            )
    return Image(label, file, size, layout, codec, sections)


def _read_summary(file: IO[bytes], *, label: str, size: int) -> Any:
    if size < len(MAGIC) + 4:
        raise InputError(f"truncated: {size} bytes, too short for an fsimage", where=label)
    file.seek(size - 4)
    (length,) = struct.unpack(">I", file.read(4))
    start = size - 4 - length
    if start < len(MAGIC):
        raise InputError(
            f"truncated: the FileSummary length in the last 4 bytes ({length}) reaches before "
            f"the start of the file ({size} bytes)",
            where=label,
        )
    file.seek(start)
    stream = MessageStream(iter([file.read(length)]), label=f"{label}: FileSummary", base=start)
    try:
        data = stream.next()
        if data is None or not stream.at_end():
            raise InputError("its length does not match its delimiter", where=stream.where())
        return parse("FileSummary", data, stream, start)
    except InputError as exc:
        raise InputError(
            f"truncated or corrupt: no readable FileSummary in the last {length + 4} bytes "
            f"({exc.problem})",
            where=label,
        ) from None


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


class MessageStream:
    """Varint-delimited messages from a stream of byte chunks, with the offset of each."""

    def __init__(
        self, chunks: Iterator[bytes], *, label: str, base: int, decompressed: bool = False
    ) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self._start = base  # offset of _buf[0]
        self.label = label
        self._unit = "decompressed byte" if decompressed else "offset"

    def where(self, offset: int | None = None) -> str:
        return (
            f"{self.label} at {self._unit} {self._start + self._pos if offset is None else offset}"
        )

    def _fill(self, need: int) -> bool:
        """Make `need` bytes available from the position; False if the stream ends first."""
        while len(self._buf) - self._pos < need:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._start += self._pos
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0
        return True

    def at_end(self) -> bool:
        return not self._fill(1)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """Each remaining message with its offset. Messages whose delimiter and bytes are all
        in the buffer are cut here in a tight loop; the rest go through `next`, which refills."""
        while True:
            buf, pos = self._buf, self._pos
            end = len(buf)
            while pos < end:
                byte = buf[pos]
                if byte < 0x80:
                    length, body = byte, pos + 1
                elif pos + 1 < end and buf[pos + 1] < 0x80:
                    length, body = (byte & 0x7F) | (buf[pos + 1] << 7), pos + 2
                else:
                    break
                if body + length > end:
                    break
                self._pos = body + length
                yield self._start + pos, buf[body : self._pos]
                buf, pos = self._buf, self._pos  # as they are now, should anything have read
                end = len(buf)
            offset = self._start + self._pos
            data = self.next()
            if data is None:
                return
            yield offset, data

    def next(self) -> bytes | None:
        """The next message's bytes, or None at the end of the stream."""
        if not self._fill(1):
            return None
        start = self._start + self._pos
        length = self._varint(start)
        if length > MAX_MESSAGE:
            raise InputError(f"corrupt: a message claims {length} bytes", where=self.where(start))
        data = self.take(length)
        if data is None:
            raise InputError(
                f"truncated: a message of {length} bytes runs past the end of the section",
                where=self.where(start),
            )
        return data

    def take(self, size: int) -> bytes | None:
        """The next `size` bytes, or None if the stream ends first."""
        if not self._fill(size):
            return None
        data = self._buf[self._pos : self._pos + size]
        self._pos += size
        return data

    def _varint(self, start: int) -> int:
        result = shift = 0
        while True:
            if not self._fill(1):
                raise InputError(
                    "truncated: the section ends inside a varint", where=self.where(start)
                )
            byte = self._buf[self._pos]
            self._pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
            if shift >= 64:
                raise InputError("corrupt: a varint longer than 10 bytes", where=self.where(start))


def _file_chunks(file: IO[bytes], length: int) -> Iterator[bytes]:
    """`length` bytes from the file's position, `READ_BYTES` at a time."""
    while length > 0:
        chunk = file.read(min(READ_BYTES, length))
        if not chunk:
            return
        length -= len(chunk)
        yield chunk


Decompressor = Callable[[Iterator[bytes], str], Iterator[bytes]]


def _inflate(raw: Iterator[bytes], where: str) -> Iterator[bytes]:
    """zlib (DefaultCodec) or gzip (GzipCodec) streams, one after another (sub-sections)."""
    return _streams(raw, where, _inflater, _zlib_outputs, zlib.error)


def _inflater() -> Any:
    return zlib.decompressobj(32 + zlib.MAX_WBITS)  # 32: a zlib or a gzip header


def _bunzip(raw: Iterator[bytes], where: str) -> Iterator[bytes]:
    return _streams(raw, where, bz2.BZ2Decompressor, _bz2_outputs, OSError)


def _streams(
    raw: Iterator[bytes],
    where: str,
    new: Callable[[], Any],
    outputs: Callable[[Any, bytes], Iterator[bytes]],
    error: type[Exception],
) -> Iterator[bytes]:
    decoder, fed = new(), False
    for chunk in raw:
        data = chunk
        while data:
            fed = True
            try:
                yield from outputs(decoder, data)
            except error as exc:
                raise InputError(f"corrupt compressed data: {exc}", where=where) from None
            if decoder.eof:  # a stream ends: the next sub-section's stream may follow
                data, decoder, fed = decoder.unused_data, new(), False
            else:
                data = b""
    if fed:
        raise InputError("truncated: the compressed data ends inside a stream", where=where)


# Both decompress at most `OUT_BYTES` at a time, so a small input cannot claim a huge buffer.
def _zlib_outputs(decoder: Any, data: bytes) -> Iterator[bytes]:
    while True:
        out = decoder.decompress(data, OUT_BYTES)
        if out:
            yield out
        data = decoder.unconsumed_tail
        if decoder.eof or (not data and len(out) < OUT_BYTES):
            return


def _bz2_outputs(decoder: Any, data: bytes) -> Iterator[bytes]:
    while True:
        out = decoder.decompress(data, OUT_BYTES)
        if out:
            yield out
        data = b""
        if decoder.eof or decoder.needs_input:
            return


def _hadoop_blocks(decompress: Callable[[bytes, int], bytes]) -> Decompressor:
    """Hadoop's block framing (SnappyCodec, Lz4Codec): each block is its uncompressed length
    (4 bytes, big-endian) then chunks, each its compressed length (4 bytes) and its data."""

    def blocks(raw: Iterator[bytes], where: str) -> Iterator[bytes]:
        stream = MessageStream(raw, label=where, base=0)
        while not stream.at_end():
            expected, done = _uint32(stream), 0
            while done < expected:
                size = _uint32(stream)
                data = _take(stream, size)
                try:
                    out = decompress(data, expected - done)
                except cramjam.DecompressionError as exc:
                    raise InputError(
                        f"corrupt compressed chunk: {exc}", where=stream.where()
                    ) from None
                if not out or done + len(out) > expected:
                    raise InputError("corrupt: a chunk overruns its block", where=stream.where())
                done += len(out)
                yield out

    return blocks


def _uint32(stream: MessageStream) -> int:
    (value,) = struct.unpack(">I", _take(stream, 4))
    return int(value)


def _take(stream: MessageStream, size: int) -> bytes:
    data = stream.take(size) if size <= MAX_MESSAGE else None
    if data is None:
        raise InputError(
            f"truncated: a block chunk of {size} bytes runs past the section", where=stream.where()
        )
    return data


def _unsnappy(data: bytes, bound: int) -> bytes:
    return bytes(cramjam.snappy.decompress_raw(data))


def _unlz4(data: bytes, bound: int) -> bytes:
    # The chunk's size is not stored: decompress into the block's remaining room, keep what came.
    out = bytearray(bound)
    size = cramjam.lz4.decompress_block_into(data, out)
    return bytes(out[:size])


_HADOOP = "org.apache.hadoop.io.compress."
_DECOMPRESSORS: dict[str, Decompressor] = {
    f"{_HADOOP}DefaultCodec": _inflate,
    f"{_HADOOP}GzipCodec": _inflate,
    f"{_HADOOP}BZip2Codec": _bunzip,
    f"{_HADOOP}SnappyCodec": _hadoop_blocks(_unsnappy),
    f"{_HADOOP}Lz4Codec": _hadoop_blocks(_unlz4),
}
