"""The filesystem scan (fleetops.analytics.storage.scan) on a real tree, against `find -printf`.

Baseline: `find PATH -xdev -printf` printing the same facts per entry (path, type, size, mtime,
atime, owner, group) to a file: what a shell pipeline over a mounted filesystem starts from.
Beside it: the Python floor (the same os.scandir + lstat walk writing nothing) and the scan
with a writer that discards its entries (what the walk costs without Parquet). Every tool runs
once untimed to warm the page cache, then they take turns; medians of --runs.

    .venv/bin/python bench/storage_scan.py                 # /usr
    .venv/bin/python bench/storage_scan.py --path /var/lib --runs 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from fleetops.analytics.storage.entries import Entry, EntryWriter
from fleetops.analytics.storage.scan import scan

FIND_FORMAT = r"%p\t%y\t%s\t%T@\t%A@\t%u\t%g\n"


class Discard(EntryWriter):
    """A writer that keeps nothing: the scan's cost without building and writing Parquet."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, entry: Entry) -> None:
        self.count += 1

    def close(self) -> None:
        pass


def run_find(root: Path, out: Path) -> int:
    with out.open("wb") as sink:
        subprocess.run(
            ["find", str(root), "-xdev", "-printf", FIND_FORMAT],
            stdout=sink,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    with out.open("rb") as lines:
        return sum(1 for _ in lines)


def run_scan(root: Path, out: Path) -> int:
    with EntryWriter(out) as writer:
        summary = scan(root, writer)
    return summary.entries


def run_discard(root: Path, out: Path) -> int:
    return scan(root, Discard()).entries


def run_floor(root: Path, out: Path) -> int:
    """os.scandir and one lstat per entry, nothing else: what any Python walk pays."""
    count, stack, device = 0, [str(root)], os.stat(root).st_dev
    while stack:
        try:
            listing = os.scandir(stack.pop())
        except OSError:
            continue
        with listing:
            for item in listing:
                st = item.stat(follow_symlinks=False)
                count += 1
                if item.is_dir(follow_symlinks=False) and st.st_dev == device:
                    stack.append(item.path)
    return count + 1


TOOLS: dict[str, Callable[[Path, Path], int]] = {
    "find -xdev -printf (baseline)": run_find,
    "fleetops scan -> Parquet": run_scan,
    "fleetops scan, entries discarded": run_discard,
    "os.scandir + lstat (floor)": run_floor,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, default=Path("/usr"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in TOOLS}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        for name, tool in TOOLS.items():  # warm the page cache and the name caches
            counts[name] = tool(args.path, out / "warm")
        for _ in range(args.runs):
            for name, tool in TOOLS.items():
                started = time.perf_counter()
                tool(args.path, out / "timed")
                times[name].append(time.perf_counter() - started)
        run_scan(args.path, out / "entries.parquet")
        size = (out / "entries.parquet").stat().st_size
        rows = duckdb.sql(f"select count(*) from '{out / 'entries.parquet'}'").fetchall()[0][0]
    report(args.path, times, counts, size, rows)


def report(
    path: Path, times: dict[str, list[float]], counts: dict[str, int], size: int, rows: int
) -> None:
    base = statistics.median(times["find -xdev -printf (baseline)"])
    print(f"tree: {path}, median of {len(next(iter(times.values())))} warm runs each")
    print(f"{'tool':36} {'entries':>9} {'median s':>9} {'entries/s':>10} {'vs find':>8}")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        rate = counts[name] / median
        print(f"{name:36} {counts[name]:9,} {median:9.3f} {rate:10,.0f} {median / base:7.2f}x")
    print(f"Parquet: {rows:,} rows, {size / 1e6:.1f} MB (zstd)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (all tools, pyarrow and DuckDB loaded): {peak:.0f} MB")
    print("find counts sockets, fifos and devices too; the scan counts them but writes none")


if __name__ == "__main__":
    main()
