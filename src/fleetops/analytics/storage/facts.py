"""A host's filesystem facts, read from the text of the commands that print them.

`df` (space and inodes), `tune2fs -l` (an ext2/3/4 superblock) and `xfs_info` (an XFS
geometry) are parsed by pure functions into frozen dataclasses: the collection is the
`filesystem_facts` operation of the change library, run on hosts by the change engine like
any read-only check, so what was run is audited and its output stored with the step; these
functions turn that output (`parse_collected`) or a pasted command's into figures. A line
that cannot be read is an `InputError` naming it, never a silent zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from fleetops.analytics.storage.exceptions import InputError

MARK = "--- fleetops-facts "  # starts each section of the operation's output
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_UNITS |= {"kB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
_BLOCKS = re.compile(r"(\d+)(B|K|M|G|T|kB|MB|GB|TB)?-blocks")


@dataclass(frozen=True, slots=True)
class DfSpace:
    """One `df -B1 -P [-T]` row, in bytes."""

    source: str
    fstype: str  # "" when df was run without -T or --output=fstype
    size: int
    used: int
    avail: int
    target: str


@dataclass(frozen=True, slots=True)
class DfInodes:
    """One `df -i -P [-T]` row. A total of 0 is a filesystem with no fixed inode count
    (btrfs, vfat...), which df prints as 0 or '-'."""

    source: str
    fstype: str
    total: int
    used: int
    free: int
    target: str


@dataclass(frozen=True, slots=True)
class Ext4Superblock:
    """The `tune2fs -l` figures the inode and reserved-block analysis needs."""

    inode_count: int
    free_inodes: int
    inode_size: int
    block_count: int
    block_size: int
    reserved_block_count: int
    free_blocks: int
    first_block: int
    blocks_per_group: int
    inodes_per_group: int
    reserved_uid: int = 0
    volume_name: str = ""
    uuid: str = ""
    features: tuple[str, ...] = ()

    @property
    def used_inodes(self) -> int:
        return self.inode_count - self.free_inodes


@dataclass(frozen=True, slots=True)
class XfsGeometry:
    """The `xfs_info` figures: XFS allocates inodes as files need them (up to `imaxpct` % of
    the space), so unlike ext4 it provisions no inode table in advance."""

    device: str
    isize: int
    agcount: int
    agsize: int
    bsize: int
    blocks: int
    imaxpct: int
    sectsz: int = 0
    log_blocks: int = 0
    realtime_blocks: int = 0


@dataclass
class HostFacts:
    """What one run of the `filesystem_facts` operation found on a host."""

    space: list[DfSpace] = field(default_factory=list)
    inodes: list[DfInodes] = field(default_factory=list)
    ext: dict[str, Ext4Superblock] = field(default_factory=dict)  # by device
    xfs: dict[str, XfsGeometry] = field(default_factory=dict)  # by device
    targets: dict[str, str] = field(default_factory=dict)  # device -> mount point
    problems: list[str] = field(default_factory=list)  # a device whose command failed


# df ----------------------------------------------------------------------------------------


def parse_df(text: str, *, label: str = "df") -> list[DfSpace]:
    """Rows of `df -B1 -P [-T]` or `df -B1 --output=source,fstype,size,used,avail,target`."""
    return [
        DfSpace(r.source, r.fstype, r.numbers[0], r.numbers[1], r.numbers[2], r.target)
        for r in _df_rows(text, label, ("used", "avail"))
    ]


def parse_df_inodes(text: str, *, label: str = "df -i") -> list[DfInodes]:
    """Rows of `df -i -P [-T]` or `df --output=source,fstype,itotal,iused,iavail,target`."""
    return [
        DfInodes(r.source, r.fstype, r.numbers[0], r.numbers[1], r.numbers[2], r.target)
        for r in _df_rows(text, label, ("iused", "ifree"))
    ]


@dataclass(frozen=True, slots=True)
class _Row:
    source: str
    fstype: str
    numbers: tuple[int, int, int]
    target: str


_HEADER_WORDS = {
    "filesystem": "source",
    "type": "fstype",
    "inodes": "total",
    "used": "used",
    "available": "avail",
    "avail": "avail",
    "iused": "iused",
    "ifree": "ifree",
    "capacity": "pct",
    "use%": "pct",
    "iuse%": "pct",
    "mounted": "target",
}


def _df_rows(text: str, label: str, kind: tuple[str, str]) -> Iterator[_Row]:
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("no df header line", where=f"{label} line 1")
    columns, unit = _df_header(lines[0], label)
    want = ["total", *kind]
    if [c for c in columns if c in {"total", "used", "avail", "iused", "ifree"}] != want:
        found = " ".join(lines[0].split())
        raise InputError(
            f"expected the columns of {label}, found: {found}", where=f"{label} line 1"
        )
    pattern = _row_pattern(columns)
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        match = pattern.match(line)
        if match is None:
            raise InputError(
                f"not a df row: {line.strip()[:120]!r}", where=f"{label} line {number}"
            )
        values = tuple(_count(match[name]) * unit for name in want)
        yield _Row(
            match["source"],
            match.groupdict().get("fstype") or "",
            (values[0], values[1], values[2]),
            match["target"],
        )


def _df_header(line: str, label: str) -> tuple[list[str], int]:
    """The header's columns in order, and the unit its size column counts in bytes."""
    columns: list[str] = []
    unit = 1
    for word in line.split():
        lower = word.lower()
        if (blocks := _BLOCKS.fullmatch(word)) is not None:
            columns.append("total")
            unit = int(blocks[1]) * _UNITS[blocks[2] or ""]
        elif lower in _HEADER_WORDS:
            columns.append(_HEADER_WORDS[lower])
        elif lower == "on" and columns and columns[-1] == "target":
            continue
        else:
            raise InputError(f"unknown df column {word!r}", where=f"{label} line 1")
    if "source" not in columns or columns[-1] != "target":
        raise InputError(
            "a df header starts with Filesystem, ends with Mounted on", where=f"{label} line 1"
        )
    return columns, unit


def _row_pattern(columns: list[str]) -> re.Pattern[str]:
    """A row's regex: the source and mount point may hold spaces, the numbers cannot."""
    parts = {
        "source": r"(?P<source>\S.*?)",
        "fstype": r"(?P<fstype>\S+)",
        "pct": r"(?:\d+%|-)",
        "target": r"(?P<target>\S.*?)",
    }
    body = r"\s+".join(parts.get(c, rf"(?P<{c}>\d+|-)") for c in columns)
    return re.compile(rf"^\s*{body}\s*$")


def _count(value: str) -> int:
    return 0 if value == "-" else int(value)


# tune2fs -l ----------------------------------------------------------------------------------

_TUNE2FS: Mapping[str, str] = {
    "Inode count": "inode_count",
    "Free inodes": "free_inodes",
    "Inode size": "inode_size",
    "Block count": "block_count",
    "Block size": "block_size",
    "Reserved block count": "reserved_block_count",
    "Free blocks": "free_blocks",
    "First block": "first_block",
    "Blocks per group": "blocks_per_group",
    "Inodes per group": "inodes_per_group",
}
_REV0_INODE_SIZE = 128  # revision 0 filesystems print no Inode size line: theirs is fixed


def parse_tune2fs(text: str, *, label: str = "tune2fs -l") -> Ext4Superblock:
    """The superblock `tune2fs -l` prints (its full output, or only the lines named above)."""
    fields: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        key, colon, value = line.partition(":")
        if line.startswith("tune2fs:"):
            raise InputError(f"tune2fs failed: {value.strip()}", where=f"{label} line {number}")
        if colon and key.strip():
            fields[key.strip()] = value.strip()
            lines[key.strip()] = number
    if "Inode size" not in fields and fields.get("Filesystem revision #", "").startswith("0"):
        fields["Inode size"] = str(_REV0_INODE_SIZE)
    numbers: dict[str, int] = {}
    for key, name in _TUNE2FS.items():
        if key not in fields:
            raise InputError(f"no {key!r} line: not tune2fs -l output", where=label)
        numbers[name] = _number(fields[key], key, f"{label} line {lines.get(key, 0)}")
    reserved_uid = fields.get("Reserved blocks uid", "0").split(" ", 1)[0]
    return Ext4Superblock(
        **numbers,
        reserved_uid=int(reserved_uid) if reserved_uid.isdigit() else 0,
        volume_name=""
        if fields.get("Filesystem volume name") == "<none>"
        else fields.get("Filesystem volume name", ""),
        uuid=fields.get("Filesystem UUID", ""),
        features=tuple(f for f in fields.get("Filesystem features", "").split() if f != "(none)"),
    )


def _number(value: str, key: str, where: str) -> int:
    if not value.isdigit():
        raise InputError(f"{key} is not a count: {value[:60]!r}", where=where)
    return int(value)


# xfs_info -------------------------------------------------------------------------------------

_XFS_SECTION = re.compile(r"^(?P<section>[a-z-]*)\s*=(?P<rest>.*)$")
_XFS_PAIR = re.compile(r"([A-Za-z][\w-]*)=([^\s,]+)")
_XFS: Mapping[str, tuple[str, str]] = {  # field -> (section, key)
    "isize": ("meta-data", "isize"),
    "agcount": ("meta-data", "agcount"),
    "agsize": ("meta-data", "agsize"),
    "bsize": ("data", "bsize"),
    "blocks": ("data", "blocks"),
    "imaxpct": ("data", "imaxpct"),
}


def parse_xfs_info(text: str, *, label: str = "xfs_info") -> XfsGeometry:
    """The geometry `xfs_info MOUNTPOINT` (or `xfs_db -r -c info DEVICE`) prints."""
    values: dict[tuple[str, str], tuple[str, int]] = {}
    section = ""
    device = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _XFS_SECTION.match(line)
        if match is None:
            raise InputError(
                f"not xfs_info output: {line.strip()[:120]!r}", where=f"{label} line {number}"
            )
        rest = match["rest"]
        if match["section"]:
            section = match["section"]
            if section == "meta-data":
                device = rest.split()[0] if rest.split() else ""
        for key, value in _XFS_PAIR.findall(rest):
            values.setdefault((section, key), (value, number))
    found: dict[str, int] = {}
    for name, place in _XFS.items():
        if place not in values:
            raise InputError(
                f"no {place[1]}= in its {place[0]} section: not xfs_info output", where=label
            )
        value, number = values[place]
        found[name] = _number(value, f"{place[0]} {place[1]}", f"{label} line {number}")
    optional = {
        "sectsz": ("meta-data", "sectsz"),
        "log_blocks": ("log", "blocks"),
        "realtime_blocks": ("realtime", "blocks"),
    }
    for name, place in optional.items():
        if place in values and values[place][0].isdigit():
            found[name] = int(values[place][0])
    return XfsGeometry(device=device, **found)


# the operation's output -------------------------------------------------------------------------


def parse_collected(stdout: str) -> HostFacts:
    """What the `filesystem_facts` operation printed: sections each headed by `MARK` with the
    command, its exit status and for a device, the device and its mount point. A device whose
    command failed (no permission, a missing tool) is a problem of the host's facts; output
    that is not the operation's is an `InputError`."""
    facts = HostFacts()
    for header, number, body in _sections(stdout):
        words = header.split(" ", 3)
        if len(words) < 2 or not words[1].startswith("exit="):
            raise InputError(f"bad section header {header[:120]!r}", where=f"line {number}")
        command, code = words[0], words[1].removeprefix("exit=")
        device, target = (words[2], words[3]) if len(words) == 4 else ("", "")
        if code != "0":
            facts.problems.append(_failure(command, code, device, body))
            if not command.startswith("df") or not body.strip():
                continue  # df exits 1 when one mount fails, and still prints the others
        label = f"{command} {device}".strip() + f" (section at line {number})"
        _store(facts, command, device, target, body, label, number)
    if not facts.space:
        raise InputError("no df section: not the filesystem_facts operation's output")
    return facts


def _failure(command: str, code: str, device: str, body: str) -> str:
    if command.startswith("df"):
        return f"{command}: exit {code} (the step's stderr names what it could not read)"
    first = body.strip().splitlines()[0][:200] if body.strip() else "no output"
    return f"{command} {device}: exit {code}: {first}"


def _store(
    facts: HostFacts, command: str, device: str, target: str, body: str, label: str, line: int
) -> None:
    if command == "df":
        facts.space = parse_df(body, label=label)
    elif command == "df-inodes":
        facts.inodes = parse_df_inodes(body, label=label)
    elif command == "tune2fs":
        facts.ext[device] = parse_tune2fs(body, label=label)
        facts.targets[device] = target
    elif command == "xfs_info":
        facts.xfs[device] = parse_xfs_info(body, label=label)
        facts.targets[device] = target
    else:
        raise InputError(f"unknown section {command!r}", where=f"line {line}")


def _sections(stdout: str) -> Iterator[tuple[str, int, str]]:
    header: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(stdout.splitlines(), start=1):
        if line.startswith(MARK):
            if header is not None:
                yield header, start, "\n".join(body)
            header, start, body = line[len(MARK) :], number, []
        elif header is None:
            if line.strip():
                raise InputError("output before the first section", where=f"line {number}")
        else:
            body.append(line)
    if header is not None:
        yield header, start, "\n".join(body)
