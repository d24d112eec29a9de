"""What a storage analysis reports: the namespace's totals, each analysis's figures, and the
findings with the bytes each fix would save."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

# Every count and size fits the database's 64-bit integer columns. The bound, an exabyte, is
# written exactly in the published schema too (OpenAPI prints it as a float: 1e+18).
Int64 = Annotated[int, Field(ge=-(10**18), le=10**18)]
FindingKind = Literal[
    "trash_retention", "layered_trash", "small_files", "cold_data", "over_replication", "inodes"
]


class Options(BaseModel):
    """The thresholds an analysis runs with; each is in the report, so a figure can be redone."""

    now: datetime
    small_file_bytes: int = Field(default=1024 * 1024, ge=1, description="smaller is small")
    block_bytes: int = Field(default=128 * 1024 * 1024, ge=1, description="HDFS block size")
    cold_days: int = Field(default=90, ge=1, description="untouched this long is cold")
    trash_retention_hours: float = Field(
        default=24, gt=0, description="the retention whose savings are estimated"
    )
    target_replication: int = Field(default=3, ge=1, le=32)
    top: int = Field(default=10, ge=1, le=1000)


class Totals(BaseModel):
    files: Int64
    directories: Int64
    symlinks: Int64
    bytes: Int64 = Field(description="of one replica")
    raw_bytes: Int64 = Field(description="with every replica")
    blocks: Int64


class Share(BaseModel):
    """One owner's or directory's part of something."""

    name: str
    files: Int64
    bytes: Int64
    raw_bytes: Int64


class TrashBin(BaseModel):
    user: str
    current_bytes: Int64
    checkpoints: Int64
    checkpoint_bytes: Int64
    raw_bytes: Int64
    oldest: datetime | None = Field(description="the oldest checkpoint")
    layered_bytes: Int64 = Field(description="inside a trash within the trash")


class RecycleBins(BaseModel):
    bins: list[TrashBin]
    files: Int64
    bytes: Int64
    raw_bytes: Int64
    layered_files: Int64
    layered_raw_bytes: Int64
    over_retention_raw_bytes: Int64 = Field(
        description="in checkpoints older than the retention asked for: freed by shortening it"
    )


class SmallFiles(BaseModel):
    files: Int64
    bytes: Int64
    share_of_namespace: float = Field(description="of all files and directories")
    namenode_bytes: Int64 = Field(description="heap their inodes and blocks take (~150 B each)")
    mergeable_objects: Int64 = Field(description="objects saved by merging each directory's")
    by_directory: list[Share]
    by_owner: list[Share]


class ColdData(BaseModel):
    files: Int64
    bytes: Int64
    raw_bytes: Int64
    by_owner: list[Share]
    erasure_coding_savings: Int64 = Field(description="raw bytes freed at RS-6-3 (1.5x)")


class Replication(BaseModel):
    overhead_bytes: Int64 = Field(description="raw minus logical")
    over_replicated_files: Int64
    over_replicated_savings: Int64 = Field(description="raw bytes freed at the target factor")


class Finding(BaseModel):
    kind: FindingKind
    title: str
    detail: str
    savings_bytes: Int64
    resource: Literal["disk", "namenode_heap"] = Field(
        default="disk", description="what the savings are of: raw disk, or the NameNode's heap"
    )
    action: str = Field(default="", description="the command or change that would apply it")


class Report(BaseModel):
    input: str
    options: Options
    totals: Totals
    recycle_bins: RecycleBins
    small_files: SmallFiles
    cold_data: ColdData
    replication: Replication
    top_owners: list[Share]
    top_directories: list[Share]
    findings: list[Finding]
    seconds: dict[str, float] = Field(default_factory=dict, description="read, analyse")


# Growth between two snapshots (`growth.compare`) ------------------------------------------------


class GrowthOptions(BaseModel):
    """How a comparison groups what changed; in the result, so a figure can be redone."""

    depth: int = Field(default=2, ge=1, le=64, description="directories grouped at this depth")
    top: int = Field(default=10, ge=1, le=1000, description="owners and directories listed")


class Snapshot(BaseModel):
    """One snapshot's totals, files only for bytes (as `Totals`)."""

    input: str
    files: int
    directories: int
    bytes: int = Field(description="of one replica")
    raw_bytes: int = Field(description="with every replica")
    newest_mtime: datetime | None = Field(
        description="the newest mtime in it: the snapshot was taken no earlier"
    )


class TotalsDelta(BaseModel):
    """After minus before."""

    files: int
    directories: int
    bytes: int
    raw_bytes: int


class GrowthRate(BaseModel):
    """The deltas spread over the span between the snapshots' newest mtimes."""

    files_per_day: float
    bytes_per_day: float
    raw_bytes_per_day: float


class PathChanges(BaseModel):
    """Files matched by path: added, removed, changed (a different size or mtime)."""

    added_files: int
    added_bytes: int
    removed_files: int
    removed_bytes: int
    changed_files: int
    changed_bytes_before: int
    changed_bytes_after: int
    unchanged_files: int
    added_directories: int
    removed_directories: int


class ShareGrowth(BaseModel):
    """One owner's or directory's files and bytes (one replica) in each snapshot."""

    name: str
    files_before: int
    files_after: int
    files_delta: int
    bytes_before: int
    bytes_after: int
    bytes_delta: int


class Movers(BaseModel):
    """The largest growth in bytes first; the largest shrinking first."""

    grew: list[ShareGrowth]
    shrank: list[ShareGrowth]


class Growth(BaseModel):
    options: GrowthOptions
    before: Snapshot
    after: Snapshot
    delta: TotalsDelta
    span_days: float | None = Field(
        description="between the snapshots' newest mtimes; none when either has none"
    )
    rate: GrowthRate | None = Field(description="per day, when the span is known and positive")
    paths: PathChanges
    owners: Movers
    directories: Movers = Field(description="by the directory at `options.depth`")
    seconds: dict[str, float] = Field(default_factory=dict, description="read, compare")
