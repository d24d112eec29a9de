"""Storage inputs: an HDFS fsimage and a large CSV listing read into entries (Parquet).

Part one, the fsimage: `fsimage_d800_f210k_compressed.img` (hfsa's test image: 210,367 inodes,
zlib) read into Parquet, wall and CPU seconds. Baseline, measured in the same run: only
decompressing its INODE section and cutting it into messages, the floor any reader in Python
pays. Then every analysis and the findings over the Parquet (DuckDB). Goal: read + report
under 3 s.

Part two, a listing: `--generate N` writes a synthetic N-entry CSV listing (one directory per
100 files, 50 owners, 10 groups, mtime as epoch seconds, atime as ISO 8601), then reads it into
Parquet: entries per second and the reading process's peak RSS (`resource.getrusage`), then the
analysis's time. Baseline:
DuckDB's own CSV reader copying the same file to Parquet (C++, several threads). Each part runs
in a process of its own, so each peak RSS is its own.

Run: `.venv/bin/python bench/storage.py [--generate 1000000] [--csv PATH] [--keep]`.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT.parent / "shared" / "data" / "fsimage" / "fsimage_d800_f210k_compressed.img"
GOAL_SECONDS = 3.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def bench_fsimage(work: Path) -> None:
    from fleetops.analytics.storage.fsimage_format import open_image
    from fleetops.analytics.storage.readers import read_input

    started, cpu = time.perf_counter(), time.process_time()
    summary = read_input(IMAGE, work / "image.parquet")
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    rss = peak_rss_mib()
    floor = time.perf_counter()
    with IMAGE.open("rb") as file:
        image = open_image(file, label=IMAGE.name, size=IMAGE.stat().st_size)
        messages = sum(1 for _ in image.messages("INODE"))
    floor = time.perf_counter() - floor
    print(f"fsimage  {IMAGE.name}: {summary.entries:,} entries ({summary.codec.rsplit('.')[-1]})")
    print(f"  read into Parquet   {seconds:6.2f} s wall  {cpu_seconds:6.2f} s CPU")
    print(f"  {summary.entries / seconds:,.0f} entries/s, peak RSS {rss:,.0f} MiB")
    print(f"  baseline: inflate + delimit INODE only ({messages:,} messages) {floor:6.2f} s")
    analysed = analyse(work / "image.parquet")
    total = seconds + analysed
    verdict = "meets" if total < GOAL_SECONDS else "misses"
    print(f"  read + report       {total:6.2f} s ({seconds:.2f} read, {analysed:.2f} analysis): "
          f"{verdict} the goal (< {GOAL_SECONDS} s)")  # fmt: skip


def analyse(parquet: Path) -> float:
    """Seconds for every analysis and the findings of the entries (DuckDB)."""
    from fleetops.analytics.storage.analyses import analyze
    from fleetops.analytics.storage.schemas import Options

    started = time.perf_counter()
    analyze(parquet, Options(now=datetime.now(UTC)), name=parquet.name)
    return time.perf_counter() - started


def generate(path: Path, count: int, *, seed: int = 7) -> None:
    """A synthetic listing: directories of 100 files each, under 50 owners' trees."""
    rng = random.Random(seed)
    now = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    with path.open("w", newline="", encoding="utf-8") as text:
        out = csv.writer(text)
        out.writerow(["path", "size", "replication", "mtime", "atime", "owner", "group", "kind"])
        directory = ""
        for i in range(count):
            owner = f"user{i // 100 % 50}"
            if i % 100 == 0:
                directory = f"/data/{owner}/d{i // 100}"
                out.writerow([directory, 0, 0, now - rng.randrange(10**8), "", owner, "g", "dir"])
                continue
            mtime = now - rng.randrange(10**8)
            atime = datetime.fromtimestamp(mtime + rng.randrange(10**6), UTC).isoformat()
            size = int(rng.lognormvariate(14, 3))
            group = f"group{i % 10}"
            out.writerow(
                [f"{directory}/part-{i:09d}.parquet", size, 3, mtime, atime, owner, group, "file"]
            )


def bench_csv(source: Path, work: Path) -> None:
    from fleetops.analytics.storage.readers import read_input

    started, cpu = time.perf_counter(), time.process_time()
    summary = read_input(source, work / "listing.parquet")
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    rss = peak_rss_mib()
    size = source.stat().st_size / 2**20
    print(f"csv      {source.name}: {summary.entries:,} entries, {size:,.0f} MiB")
    print(f"  read into Parquet   {seconds:6.2f} s wall  {cpu_seconds:6.2f} s CPU")
    rate = f"{summary.entries / seconds:,.0f} entries/s, {size / seconds:,.1f} MiB/s"
    print(f"  {rate}, peak RSS {rss:,.0f} MiB")
    print(f"  100 million entries at this rate: {1e8 / summary.entries * seconds / 60:,.0f} min")
    analysed = analyse(work / "listing.parquet")
    print(f"  analysis            {analysed:6.2f} s, peak RSS {peak_rss_mib():,.0f} MiB")


def bench_duckdb_csv(source: Path, work: Path) -> None:
    import duckdb

    started = time.perf_counter()
    duckdb.sql(f"copy (select * from read_csv('{source}')) to '{work / 'duck.parquet'}'")
    seconds = time.perf_counter() - started
    rss = peak_rss_mib()
    print(f"  baseline: DuckDB read_csv -> Parquet {seconds:6.2f} s, peak RSS {rss:,.0f} MiB")


def child(part: str, *args: str) -> None:
    """Run one part in a fresh process, so that its peak RSS is its own."""
    subprocess.run([sys.executable, __file__, "--part", part, *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", type=int, default=0, metavar="N", help="entries in the CSV")
    parser.add_argument("--csv", type=Path, help="the CSV listing to write and read")
    parser.add_argument("--keep", action="store_true", help="keep the generated CSV")
    parser.add_argument("--part", choices=["fsimage", "csv", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        work = args.work
        {"fsimage": lambda: bench_fsimage(work), "csv": lambda: bench_csv(args.csv, work),
         "duckdb": lambda: bench_duckdb_csv(args.csv, work)}[args.part]()  # fmt: skip
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        child("fsimage", "--work", str(work))
        if args.generate:
            source = args.csv or work / f"listing_{args.generate}.csv"
            started = time.perf_counter()
            generate(source, args.generate)
            print(f"generated {source} in {time.perf_counter() - started:.1f} s")
            child("csv", "--csv", str(source), "--work", str(work))
            child("duckdb", "--csv", str(source), "--work", str(work))
            if not args.keep and args.csv:
                source.unlink()


if __name__ == "__main__":
    main()
