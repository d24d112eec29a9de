"""`fleetops storage analyze|scan|growth`: storage analysis where the data is.

An fsimage or a listing is analysed on the machine that holds it (it may be tens of GB, and the
server never reads a path a user names); `--save` sends the report, not the input, to the server,
which keeps it for `/analytics/storage` and the API.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleetops.kit.cli import Column, OutputOption, api, emit, fail, stderr, stdout
from fleetops.kit.exitcodes import EXIT_NOT_FOUND, exit_code_for_status
from fleetops.kit.units import binary_bytes as size

if TYPE_CHECKING:
    from fleetops.analytics.storage.scan import ScanSummary
    from fleetops.analytics.storage.schemas import Options

storage_app = typer.Typer(
    help="Storage analysis: HDFS fsimages, listings and scans, and what they waste.",
    no_args_is_help=True,
)

FINDING_COLUMNS: list[Column] = [
    ("saves", lambda f: size(f["savings_bytes"]) + (" heap" if f["resource"] != "disk" else "")),
    ("finding", "title"),
    ("how", "action"),
]
BIN_COLUMNS: list[Column] = [
    ("user", "user"),
    ("current", lambda b: size(b["current_bytes"])),
    ("checkpoints", "checkpoints"),
    ("in checkpoints", lambda b: size(b["checkpoint_bytes"])),
    ("raw", lambda b: size(b["raw_bytes"])),
    ("layered", lambda b: size(b["layered_bytes"])),
    ("oldest", "oldest"),
]

TOTAL_COLUMNS: list[Column] = [
    ("", "what"),
    ("before", "before"),
    ("after", "after"),
    ("delta", "delta"),
]
PATH_COLUMNS: list[Column] = [
    ("files", "what"),
    ("count", "files"),
    ("bytes before", lambda p: "" if p["before"] is None else size(p["before"])),
    ("bytes after", lambda p: "" if p["after"] is None else size(p["after"])),
]
SHARE_COLUMNS: list[Column] = [
    ("name", "name"),
    ("files before", "files_before"),
    ("files after", "files_after"),
    ("bytes before", lambda s: size(s["bytes_before"])),
    ("bytes after", lambda s: size(s["bytes_after"])),
    ("delta", lambda s: _signed(s["bytes_delta"])),
]


@storage_app.command("analyze")
def analyze(
    ctx: typer.Context,
    source: Annotated[
        Path,
        typer.Argument(
            help="an fsimage, `hdfs oiv -p Delimited` output, "
            "a CSV or Parquet listing, or scanned entries"
        ),
    ],
    output: OutputOption = "table",
    kind: Annotated[
        str | None, typer.Option(help="fsimage, oiv, csv or parquet: when the file does not say")
    ] = None,
    small_file_bytes: Annotated[int, typer.Option(min=1, help="smaller is a small file")] = 1 << 20,
    cold_days: Annotated[int, typer.Option(min=1, help="untouched this long is cold")] = 90,
    trash_retention_hours: Annotated[
        float, typer.Option(min=0.01, help="the trash retention whose savings to estimate")
    ] = 24,
    target_replication: Annotated[int, typer.Option(min=1, max=32)] = 3,
    top: Annotated[int, typer.Option(min=1, max=1000, help="owners and directories listed")] = 10,
    save: Annotated[bool, typer.Option(help="store the report on the server")] = False,
) -> None:
    """Read a namespace and report what it holds and what each fix would save."""
    from datetime import UTC, datetime

    from fleetops.analytics.storage.schemas import Options

    if not source.exists():
        fail(f"{source}: no such file or directory", EXIT_NOT_FOUND)
    options = Options(
        now=datetime.now(UTC),
        small_file_bytes=small_file_bytes,
        cold_days=cold_days,
        trash_retention_hours=trash_retention_hours,
        target_replication=target_replication,
        top=top,
    )
    data = _report(source, kind, options)
    if save:
        saved = api(ctx).request("POST", "/api/v1/storage/reports", json=data)
        stderr.print(f"saved as report {saved['id']}: /analytics/storage/{saved['id']}")
    if output.lower() != "table":
        emit(data, output)
        return
    _print(data)


def _report(source: Path, kind: str | None, options: Options) -> dict[str, Any]:
    """Read the input into entries (a temporary Parquet file), analyse them, time both."""
    from fleetops.analytics.storage.analyses import analyze as run_analyses

    with tempfile.TemporaryDirectory(prefix="fleetops-storage-") as work:
        entries = Path(work) / "entries.parquet"
        started = time.perf_counter()
        _read(source, entries, kind)
        read = time.perf_counter()
        with stderr.status("analysing..."):
            report = run_analyses(entries, options, name=source.name)
        analysed = time.perf_counter()
    report.seconds = {"read": round(read - started, 3), "analyse": round(analysed - read, 3)}
    return report.model_dump(mode="json")


def _read(source: Path, entries: Path, kind: str | None) -> None:
    """Read an input (a directory is scanned) into entries; a bad one stops the command."""
    from fleetops.analytics.storage.exceptions import InputError
    from fleetops.analytics.storage.readers import read_input

    try:
        if source.is_dir():
            _scan(source, entries)
        else:
            with stderr.status(f"reading {source.name}..."):
                read_input(source, entries, kind=kind)
    except InputError as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))


def _scan(root: Path, out: Path, *, cross_filesystems: bool = False) -> ScanSummary:
    """Walk a mounted filesystem into entries, its progress on stderr; what it could not read
    is said, not fatal."""
    from fleetops.analytics.storage.entries import EntryWriter
    from fleetops.analytics.storage.scan import scan

    with stderr.status(f"scanning {root}...") as status, EntryWriter(out) as writer:
        summary = scan(
            root,
            writer,
            cross_filesystems=cross_filesystems,
            progress=lambda s: status.update(f"scanning {root}: {s.entries:,} entries"),
        )
    if summary.unreadable:
        first = "; ".join(f"{path}: {why}" for path, why in summary.problems[:3])
        stderr.print(f"[yellow]{summary.unreadable} unreadable[/yellow] ({first})")
    return summary


@storage_app.command("scan")
def scan_command(
    root: Annotated[Path, typer.Argument(help="a directory of a local or mounted filesystem")],
    out: Annotated[Path, typer.Option("--out", "-O", help="the entries' Parquet file")],
    cross_filesystems: Annotated[
        bool, typer.Option(help="enter filesystems mounted below the root")
    ] = False,
) -> None:
    """Walk a filesystem into an entries file (streaming: any size), for `storage analyze`."""
    from fleetops.analytics.storage.exceptions import InputError

    if not root.is_dir():
        fail(f"{root}: not a directory", EXIT_NOT_FOUND)
    try:
        summary = _scan(root, out, cross_filesystems=cross_filesystems)
    except InputError as exc:
        fail(exc.detail, exit_code_for_status(exc.status_code))
    stdout.print(
        f"{out}: {summary.entries:,} entries ({summary.files:,} files, {summary.dirs:,} "
        f"directories, {size(summary.bytes)})"
    )


@storage_app.command("growth")
def growth_command(
    before: Annotated[Path, typer.Argument(help="the earlier snapshot: any input `analyze` reads")],
    after: Annotated[Path, typer.Argument(help="the later snapshot of the same namespace")],
    output: OutputOption = "table",
    kind: Annotated[
        str | None, typer.Option(help="fsimage, oiv, csv or parquet: when the files do not say")
    ] = None,
    depth: Annotated[
        int, typer.Option(min=1, max=64, help="directories grouped at this depth")
    ] = 2,
    top: Annotated[int, typer.Option(min=1, max=1000, help="owners and directories listed")] = 10,
) -> None:
    """Compare two snapshots of a namespace: what grew, what shrank, and how fast."""
    from fleetops.analytics.storage.growth import compare
    from fleetops.analytics.storage.schemas import GrowthOptions

    for source in (before, after):
        if not source.exists():
            fail(f"{source}: no such file or directory", EXIT_NOT_FOUND)
    with tempfile.TemporaryDirectory(prefix="fleetops-growth-") as work:
        entries = (Path(work) / "before.parquet", Path(work) / "after.parquet")
        started = time.perf_counter()
        _read(before, entries[0], kind)
        _read(after, entries[1], kind)
        read = time.perf_counter()
        with stderr.status("comparing..."):
            growth = compare(
                *entries,
                GrowthOptions(depth=depth, top=top),
                names=(before.name, after.name),
                spill=Path(work),
            )
        growth.seconds = {
            "read": round(read - started, 3),
            "compare": round(time.perf_counter() - read, 3),
        }
    data = growth.model_dump(mode="json")
    if output.lower() != "table":
        emit(data, output)
        return
    _print_growth(data)


def _moment(iso: str | None) -> str:
    return "none" if iso is None else iso[:16].replace("T", " ") + " UTC"


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + size(value)


def _print_growth(growth: dict[str, Any]) -> None:
    then, now, delta = growth["before"], growth["after"], growth["delta"]
    stdout.print(
        f"[bold]{then['input']}[/bold] -> [bold]{now['input']}[/bold]: {delta['files']:+} files, "
        f"{delta['directories']:+} directories, {_signed(delta['bytes'])} "
        f"({_signed(delta['raw_bytes'])} with replicas)"
    )
    span = growth["span_days"]
    said = f"newest mtime {_moment(then['newest_mtime'])} -> {_moment(now['newest_mtime'])}"
    if growth["rate"]:
        rate = growth["rate"]
        said += (
            f": {span:.1f} days, {_signed(rate['bytes_per_day'])} a day "
            f"({_signed(rate['raw_bytes_per_day'])} with replicas), "
            f"{rate['files_per_day']:+.3g} files a day"
        )
    elif span is not None:
        said += ": no time between them, no rate"
    stdout.print(said)
    emit(_total_rows(growth), "table", TOTAL_COLUMNS, title="Totals")
    emit(_path_rows(growth["paths"]), "table", PATH_COLUMNS, title="Files by path")
    for by in ("owners", "directories"):
        for way in ("grew", "shrank"):
            if growth[by][way]:
                emit(growth[by][way], "table", SHARE_COLUMNS, title=f"{by.capitalize()} that {way}")
    seconds = growth["seconds"]
    stderr.print(f"read in {seconds['read']:.2f} s, compared in {seconds['compare']:.2f} s")


def _total_rows(growth: dict[str, Any]) -> list[dict[str, str]]:
    then, now, delta = growth["before"], growth["after"], growth["delta"]
    counts = [
        {"what": key, "before": str(then[key]), "after": str(now[key]), "delta": f"{delta[key]:+}"}
        for key in ("files", "directories")
    ]
    sizes = [
        {
            "what": key.replace("_", " "),
            "before": size(then[key]),
            "after": size(now[key]),
            "delta": _signed(delta[key]),
        }
        for key in ("bytes", "raw_bytes")
    ]
    return counts + sizes


def _path_rows(paths: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "what": "added",
            "files": paths["added_files"],
            "before": 0,
            "after": paths["added_bytes"],
        },
        {
            "what": "removed",
            "files": paths["removed_files"],
            "before": paths["removed_bytes"],
            "after": 0,
        },
        {
            "what": "changed",
            "files": paths["changed_files"],
            "before": paths["changed_bytes_before"],
            "after": paths["changed_bytes_after"],
        },
        {"what": "unchanged", "files": paths["unchanged_files"], "before": None, "after": None},
    ]


def _print(report: dict[str, Any]) -> None:
    totals = report["totals"]
    stdout.print(
        f"[bold]{report['input']}[/bold]: {totals['files']} files, {totals['directories']} "
        f"directories, {size(totals['bytes'])} ({size(totals['raw_bytes'])} with replicas), "
        f"{totals['blocks']} blocks"
    )
    emit(report["findings"], "table", FINDING_COLUMNS, title="Findings, largest first")
    if report["recycle_bins"]["bins"]:
        emit(report["recycle_bins"]["bins"], "table", BIN_COLUMNS, title="Recycle bins")
    seconds = report["seconds"]
    stderr.print(f"read in {seconds['read']:.2f} s, analysed in {seconds['analyse']:.2f} s")
