"""A binary HDFS fsimage, read into namespace entries without Hadoop.

An inode knows its name, not its path: the INODE_DIR section says which directory holds which
inode. So the image is read in passes over its sections, each streamed (decompressed as it is
read), never whole:

1. STRING_TABLE: the user and group names permissions point to (a handful).
2. INODE_REFERENCE and INODE_DIR: each inode's parent, kept as two sorted int64 arrays
   (16 bytes an inode) rather than a dict of Python ints (about 100).
3. INODE, directories only: their names, then every directory's full path (a dict; directories
   are a small part of a namespace).
4. INODE again, every inode: an entry for each, written to the `EntryWriter` a batch at a time.

Inodes no directory lists (copies kept only by a snapshot) have no path and are not written;
they are counted as `unreachable`. The summary counts the root as a directory, as hfsa does.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fleetops.analytics.storage.entries import EntryWriter
from fleetops.analytics.storage.exceptions import InputError
from fleetops.analytics.storage.fsimage_format import (
    INODE_DIRECTORY,
    INODE_FILE,
    INODE_SYMLINK,
    MAGIC,
    Image,
    MessageStream,
    open_image,
    parse,
)

BATCH = 8192  # inodes whose parents are looked up together
_NO_PARENT = -1
_MAX_ID = (1 << 63) - 1  # ids are uint64 on disk, int64 in Hadoop and here


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """What an image held, as written: the root counts as a directory."""

    layout_version: int
    codec: str  # the Hadoop codec class, "" when not compressed
    inodes: int  # as the INODE section's header says
    files: int
    directories: int
    symlinks: int
    bytes: int  # sum of the files' block sizes: one replica
    blocks: int
    users: int
    groups: int
    unreachable: int  # inodes no directory lists (snapshot copies): not written


def is_fsimage(head: bytes) -> bool:
    """Whether a file's first bytes are an fsimage's magic."""
    return head.startswith(MAGIC)


def read_fsimage(path: Path, writer: EntryWriter) -> ImageSummary:
    """Write every reachable inode of the image at `path` to `writer`."""
    with path.open("rb") as file:
        image = open_image(file, label=path.name, size=path.stat().st_size)
        strings = _string_table(image)
        parents = _parents(image, _references(image))
        dirs = _directory_paths(_directory_names(image), parents)
        namespace = _Namespace(image.label, strings, parents, dirs, writer)
        inodes = namespace.write_all(image.messages("INODE"))
    return ImageSummary(
        layout_version=image.layout_version,
        codec=image.codec,
        inodes=inodes,
        files=namespace.files,
        directories=namespace.directories,
        symlinks=namespace.symlinks,
        bytes=namespace.bytes,
        blocks=namespace.blocks,
        users=len({key >> 24 for key in namespace.owners}),
        groups=len({key & 0xFFFFFF for key in namespace.owners}),
        unreachable=namespace.unreachable,
    )


@dataclass(frozen=True, slots=True)
class _Strings:
    """The string table. Since layout -65 (`maskBits` set) one table holds several: an entry's
    id carries its table in its top bits (users 1, groups 2: Hadoop's SerialNumberManager)."""

    table: dict[int, str]
    user_mask: int
    group_mask: int


def _string_table(image: Image) -> _Strings:
    stream = image.messages("STRING_TABLE")
    messages = iter(stream)
    header = parse("StringTableSection", *_required(messages, stream))
    table: dict[int, str] = {}
    for _ in range(header.numEntry):
        data, _, at = _required(messages, stream)
        entry = parse("StringEntry", data, stream, at)
        try:
            table[entry.id] = entry.str.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                "corrupt: a string that is not UTF-8", where=stream.where(at)
            ) from None
    if not header.maskBits:
        return _Strings(table, 0, 0)
    shift = 32 - header.maskBits
    return _Strings(table, 1 << shift, 2 << shift)


def _references(image: Image) -> list[int]:
    """The inode each reference points to, by the reference's position (its id)."""
    if "INODE_REFERENCE" not in image.sections:
        return []
    stream = image.messages("INODE_REFERENCE")
    return [parse("INodeReference", data, stream, at).referredId for at, data in stream]


class Parents:
    """Each inode's parent directory: child ids sorted, their parents beside them."""

    def __init__(self, children: array[int], parents: array[int]) -> None:
        child = np.frombuffer(children, dtype=np.int64) if children else np.empty(0, np.int64)
        parent = np.frombuffer(parents, dtype=np.int64) if parents else np.empty(0, np.int64)
        order = np.argsort(child, kind="stable")
        self._children = child[order]
        self._parents = parent[order]

    def of(self, ids: list[int]) -> list[int]:
        """The parent of each id, `_NO_PARENT` where no directory lists it."""
        wanted = np.asarray(ids, dtype=np.int64)
        if not len(self._children):
            return [_NO_PARENT] * len(ids)
        at = np.minimum(np.searchsorted(self._children, wanted), len(self._children) - 1)
        found = self._children[at] == wanted
        parents: list[int] = np.where(found, self._parents[at], _NO_PARENT).tolist()
        return parents


def _parents(image: Image, references: list[int]) -> Parents:
    stream = image.messages("INODE_DIR")
    children, parents = array("q"), array("q")
    for at, data in stream:
        entry = parse("DirEntry", data, stream, at)
        listed = list(entry.children)
        for ref in entry.refChildren:
            if ref >= len(references):
                raise InputError(
                    f"corrupt: reference {ref} is not in INODE_REFERENCE", where=stream.where(at)
                )
            listed.append(references[ref])
        if entry.parent > _MAX_ID or (listed and max(listed) > _MAX_ID):
            raise InputError("corrupt: an inode id beyond 2^63", where=stream.where(at))
        children.extend(listed)
        parents.extend([entry.parent] * len(listed))
    return Parents(children, parents)


def _inode_messages(stream: MessageStream) -> Iterator[tuple[bytes, int]]:
    """Each inode message of the INODE section and its offset, checked against the header."""
    messages = iter(stream)
    header = parse("INodeSection", *_required(messages, stream))
    for _ in range(header.numInodes):
        found = next(messages, None)
        if found is None:
            raise InputError(
                f"truncated: the section ends before its {header.numInodes} inodes",
                where=stream.where(),
            )
        yield found[1], found[0]
    extra = next(messages, None)
    if extra is not None:
        raise InputError(
            f"corrupt: bytes follow the {header.numInodes} inodes the header announces",
            where=stream.where(extra[0]),
        )


def _directory_names(image: Image) -> dict[int, str]:
    names: dict[int, str] = {}
    stream = image.messages("INODE")
    for data, at in _inode_messages(stream):
        # Hadoop writes the type (field 1) first: a non-directory is skipped without parsing.
        if data[:2] != b"\x08\x02" and data[:1] == b"\x08":
            continue
        node = parse("INode", data, stream, at)
        if node.type == INODE_DIRECTORY:
            names[node.id] = _name(node, stream, at)
    return names


def _directory_paths(names: dict[int, str], parents: Parents) -> dict[int, str | None]:
    """Every directory's full path; None for one no chain of directories reaches from the root."""
    ids = list(names)
    parent_of = dict(zip(ids, parents.of(ids), strict=True))
    paths: dict[int, str | None] = {
        i: "/" for i in ids if parent_of[i] == _NO_PARENT and names[i] == ""
    }
    for start in ids:
        chain: list[int] = []
        node: int | None = start
        while node is not None and node not in paths:
            chain.append(node)
            parent = parent_of[node]
            node = parent if parent in names and len(chain) <= len(names) else None
        base = paths[node] if node is not None else None
        for child in reversed(chain):
            base = None if base is None else _join(base, names[child])
            paths[child] = base
    return paths


def _join(parent: str, name: str) -> str:
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


def _name(node: Any, stream: MessageStream, at: int) -> str:
    try:
        name: str = node.name.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"corrupt: inode {node.id} has a name that is not UTF-8", where=stream.where(at)
        ) from None
    return name


def _required(
    messages: Iterator[tuple[int, bytes]], stream: MessageStream
) -> tuple[bytes, MessageStream, int]:
    """The next message, which must be there (a header, an announced entry)."""
    found = next(messages, None)
    if found is None:
        raise InputError(
            "truncated: the section ends before its announced messages", where=stream.where()
        )
    return found[1], stream, found[0]


@dataclass
class _Namespace:
    """Inodes to entries, a batch at a time, counted as they are written."""

    label: str
    strings: _Strings
    parents: Parents
    dirs: dict[int, str | None]
    writer: EntryWriter
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    bytes: int = 0
    blocks: int = 0
    unreachable: int = 0
    owners: dict[int, tuple[str, str]] = field(default_factory=dict)  # permission >> 16

    def write_all(self, stream: MessageStream) -> int:
        """Write every inode of the INODE section; the number of inodes read."""
        batch: list[tuple[Any, int]] = []
        count = 0
        for data, at in _inode_messages(stream):
            node = parse("INode", data, stream, at)
            if node.id > _MAX_ID:
                raise InputError(f"corrupt: inode id {node.id} beyond 2^63", where=stream.where(at))
            batch.append((node, at))
            count += 1
            if len(batch) == BATCH:
                self._write(batch, stream)
                batch = []
        self._write(batch, stream)
        return count

    def _write(self, batch: list[tuple[Any, int]], stream: MessageStream) -> None:
        parents = self.parents.of([node.id for node, _ in batch])
        dirs = self.dirs
        for (node, at), parent in zip(batch, parents, strict=True):
            if node.type == INODE_DIRECTORY:
                path = dirs.get(node.id)
            else:
                base = dirs.get(parent)
                path = None if base is None else _join(base, _name(node, stream, at))
            if path is None:
                self.unreachable += 1
            else:
                self._entry(node, path, stream, at)

    def _entry(self, node: Any, path: str, stream: MessageStream, at: int) -> None:
        """Write one inode (times stay the milliseconds the image holds: no object per entry)."""
        kind, row = node.type, self.writer.row
        if kind == INODE_FILE:
            file = node.file
            size = sum(block.numBytes for block in file.blocks)
            self.files += 1
            self.bytes += size
            self.blocks += len(file.blocks)
            owner, group = self._owner(file.permission, stream, at)
            atime = file.accessTime or None
            row(path, "file", size, file.replication, len(file.blocks),
                file.modificationTime, atime, owner, group)  # fmt: skip
        elif kind == INODE_DIRECTORY:
            self.directories += 1
            owner, group = self._owner(node.directory.permission, stream, at)
            row(path, "dir", 0, 0, 0, node.directory.modificationTime, None, owner, group)
        elif kind == INODE_SYMLINK:
            self.symlinks += 1
            link = node.symlink
            owner, group = self._owner(link.permission, stream, at)
            row(path, "symlink", 0, 0, 0, link.modificationTime, link.accessTime or None,
                owner, group)  # fmt: skip
        else:
            raise InputError(
                f"corrupt: inode {node.id} has unknown type {kind}", where=stream.where(at)
            )

    def _owner(self, permission: int, stream: MessageStream, at: int) -> tuple[str, str]:
        """User and group of a permission: user string id (24 bits), group's (24), mode (16)."""
        key = permission >> 16
        found = self.owners.get(key)
        if found is not None:
            return found
        user, group = (key >> 24) & 0xFFFFFF, key & 0xFFFFFF
        table = self.strings.table
        owner = table.get(user | self.strings.user_mask)
        grp = table.get(group | self.strings.group_mask)
        if owner is None or grp is None:
            missing = user if owner is None else group
            raise InputError(
                f"corrupt: string id {missing} is not in STRING_TABLE", where=stream.where(at)
            )
        self.owners[key] = (owner, grp)
        return owner, grp
