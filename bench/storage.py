"""Storage inputs: an HDFS fsimage and a large CSV listing read into entries (Parquet).

Part one, the fsimage: `fsimage_d800_f210k_compressed.img` (hfsa's test image: 210,367 inodes,
zlib) read into Parquet, wall and CPU seconds. Baseline, measured in the same run: only
decompressing its INODE section and cutting it into messages, the floor any reader in Python
pays. Then every analysis and the findings over the Parquet (DuckDB). Goal: read + report
under 3 s.

Part two, a listing: `--generate N` has DuckDB write a synthetic N-entry CSV listing (one
directory per 100 files, one directory in ten in a user's .Trash, 50 owners, 10 groups, mtime as
epoch seconds, atime as ISO 8601), then reads it into Parquet (`read_input`: DuckDB's copy, see
`listings_sql`): entries per second and the reading process's peak RSS (`resource.getrusage`);
then every analysis of it, its time and peak RSS; then read + analysis against the goal: 100
million entries in under 5 minutes and 4 GiB. Baseline: DuckDB's own CSV reader copying the same
file to Parquet with the types it guesses. Each part runs in a process of its own, so each peak
RSS is its own.

Run: `.venv/bin/python bench/storage.py [--generate 1000000] [--csv PATH] [--keep]`.
"""

from __future__ import annotations

import argparse
import json
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
GOAL_ENTRIES = 100_000_000
LISTING_GOAL_SECONDS = 300.0  # GOAL_ENTRIES read and analysed
LISTING_GOAL_RSS_MIB = 4096.0


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


GENERATE = """
copy (
  select case when i % 100 = 0 then dir
              else dir || '/part-' || lpad(i::varchar, 9, '0') || '.parquet' end as path,
         case when i % 100 = 0 then 0
              else floor(exp(14 + 3 * sqrt(-2 * ln(u1)) * cos(2 * pi() * u2)))::bigint end as size,
         case when i % 100 = 0 then 0 else 3 end as replication,
         mtime,
         case when i % 100 <> 0 then strftime(make_timestamp((mtime + seen) * 1000000),
                                              '%Y-%m-%dT%H:%M:%S+00:00') end as atime,
         owner,
         case when i % 100 = 0 then 'g' else 'group' || i % 10 end as "group",
         case when i % 100 = 0 then 'dir' else 'file' end as kind
  from (
    select *,
      case d % 20
        when 0 then '/user/' || owner || '/.Trash/Current/d' || d
        when 1 then '/user/' || owner || '/.Trash/'
                    || strftime(make_timestamp(checkpoint * 1000000), '%y%m%d%H%M%S') || '/d' || d
        else '/data/' || owner || '/d' || d end as dir
    from (
      select i, i // 100 as d, 'user' || i // 100 % 50 as owner,
             {now} - (hash(i, 1) % 100000000)::bigint as mtime,
             (hash(i, 2) % 1000000)::bigint as seen,
             (hash(i, 3) % 1000000 + 0.5) / 1e6 as u1, (hash(i, 4) % 1000000 + 0.5) / 1e6 as u2,
             {now} - (hash(i // 100) % 10000000)::bigint as checkpoint
      from range({count}) as t(i)))
) to '{path}' (header, delimiter ',')
"""


def generate(path: Path, count: int) -> None:
    """A synthetic listing written by DuckDB: directories of 100 files each (one in ten of them
    in a user's .Trash, half its Current, half a checkpoint), under 50 owners' trees, 10 groups;
    mtime as epoch seconds, atime as ISO 8601. Its values are hashes of the row number."""
    import duckdb

    now = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    db = duckdb.connect()
    db.execute("set memory_limit = '2GB'")
    db.execute("set preserve_insertion_order = false")
    db.execute(GENERATE.format(now=now, count=int(count), path=str(path).replace("'", "''")))
    db.close()


def bench_csv(source: Path, work: Path) -> None:
    """Read the listing into entries (DuckDB's copy, the Python reader where it declines)."""
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
    (work / "read.json").write_text(json.dumps({"seconds": seconds, "rss": rss}))


def bench_analysis(work: Path) -> None:
    """Every analysis of the entries the csv part wrote, in a process of its own."""
    cpu = time.process_time()
    seconds = analyse(work / "listing.parquet")
    cpu_seconds, rss = time.process_time() - cpu, peak_rss_mib()
    print(f"  analysis            {seconds:6.2f} s wall  {cpu_seconds:6.2f} s CPU, "
          f"peak RSS {rss:,.0f} MiB")  # fmt: skip
    (work / "analysis.json").write_text(json.dumps({"seconds": seconds, "rss": rss}))


def verdict(work: Path, entries: int) -> None:
    """Read + analysis against the goal: 100 million entries in < 5 min, < 4 GiB peak."""
    read = json.loads((work / "read.json").read_text())
    analysis = json.loads((work / "analysis.json").read_text())
    total, peak = read["seconds"] + analysis["seconds"], max(read["rss"], analysis["rss"])
    print(f"  read + analysis     {total:6.2f} s ({read['seconds']:.2f} read, "
          f"{analysis['seconds']:.2f} analysis), peak RSS {peak:,.0f} MiB")  # fmt: skip
    goal = f"(< {LISTING_GOAL_SECONDS:.0f} s, < {LISTING_GOAL_RSS_MIB / 1024:.0f} GiB)"
    if entries < GOAL_ENTRIES:
        projected = total * GOAL_ENTRIES / entries
        print(f"  {GOAL_ENTRIES:,} entries at this rate: {projected:,.0f} s; goal {goal}")
        return
    meets = total < LISTING_GOAL_SECONDS and peak < LISTING_GOAL_RSS_MIB
    print(f"  {'meets' if meets else 'misses'} the goal {goal}")


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
    parts = ["fsimage", "csv", "analysis", "duckdb"]
    parser.add_argument("--part", choices=parts, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        work = args.work
        {"fsimage": lambda: bench_fsimage(work), "csv": lambda: bench_csv(args.csv, work),
         "analysis": lambda: bench_analysis(work),
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
            child("analysis", "--work", str(work))
            verdict(work, args.generate)
            child("duckdb", "--csv", str(source), "--work", str(work))
            if not args.keep and args.csv:
                source.unlink()


if __name__ == "__main__":
    main()
