"""The demo cluster's HDFS namespace, as an fsimage would list it: what storage analysis finds.

Users' home directories with recycle bins kept too long (checkpoints days old, a trash deleted
into a trash), Spark jobs' output directories full of small part files, warehouse tables of
large files of which the older partitions nobody reads any more, and a few jars replicated ten
times. Deterministic for a seed, so the demo's figures are the same on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from fleetops.analytics.storage.entries import Entry

MB = 1024 * 1024
BLOCK = 128 * MB
USERS = ("alice", "bob", "carol", "dave", "etl", "hive", "spark")


def namespace(now: datetime, *, seed: int = 7, tables: int = 12, jobs: int = 40) -> Iterator[Entry]:
    """Entries of a small production-like namespace (about 30,000 files)."""
    rng = random.Random(seed)
    yield _dir("/", now)
    for top in ("/user", "/warehouse", "/jobs", "/apps"):
        yield _dir(top, now)
    for user in USERS:
        yield from _home(rng, user, now)
    for table in range(tables):
        yield from _table(rng, f"/warehouse/events_{table:02d}", now)
    for job in range(jobs):
        yield from _job_output(rng, f"/jobs/daily-report-{job:03d}", now)
    for jar in range(6):
        age = timedelta(days=rng.uniform(1, 30))
        yield _file(
            f"/apps/lib/udf-{jar}.jar", rng.randrange(2, 40) * MB, now - age, "hive", rep=10
        )


def _home(rng: random.Random, user: str, now: datetime) -> Iterator[Entry]:
    home = f"/user/{user}"
    yield _dir(home, now)
    for i in range(rng.randrange(5, 30)):
        yield _file(f"{home}/data/sample-{i}.parquet", rng.randrange(1, 900) * MB, now, user)
    trash = f"{home}/.Trash"
    for i in range(rng.randrange(3, 12)):
        size = rng.randrange(1, 2000) * MB
        yield _file(f"{trash}/Current{home}/old/run-{i}.csv", size, now - timedelta(hours=2), user)
    for days in sorted(rng.sample(range(2, 20), rng.randrange(1, 4))):
        stamp = (now - timedelta(days=days)).strftime("%y%m%d%H%M%S")
        for i in range(rng.randrange(2, 15)):
            size = rng.randrange(10, 4000) * MB
            mtime = now - timedelta(days=days + 1)
            yield _file(f"{trash}/{stamp}{home}/tmp/part-{i:05d}", size, mtime, user)
    if rng.random() < 0.5:  # deleted from inside the trash: kept again, layered
        stamp = (now - timedelta(days=3)).strftime("%y%m%d%H%M%S")
        inner = f"{trash}/Current{home}/.Trash/{stamp}{home}"
        for i in range(rng.randrange(2, 6)):
            yield _file(f"{inner}/dup-{i}.bin", rng.randrange(100, 3000) * MB, now, user)


def _table(rng: random.Random, path: str, now: datetime) -> Iterator[Entry]:
    yield _dir(path, now)
    for day in range(rng.randrange(60, 400, 20)):
        partition = f"{path}/dt={(now - timedelta(days=day)).date()}"
        touched = now - timedelta(days=day)  # nobody reads a partition after it is written
        yield _dir(partition, touched)
        for i in range(rng.randrange(2, 8)):
            size = rng.randrange(64, 1024) * MB
            yield _file(f"{partition}/part-{i:05d}.orc", size, touched, "hive")


def _job_output(rng: random.Random, path: str, now: datetime) -> Iterator[Entry]:
    yield _dir(path, now)
    for run in range(rng.randrange(5, 20)):
        out = f"{path}/run={run}"
        yield _dir(out, now - timedelta(days=run))
        for i in range(rng.randrange(20, 60)):  # one tiny file per task: the small-file problem
            size = rng.randrange(200, 400_000)
            yield _file(f"{out}/part-{i:05d}", size, now - timedelta(days=run), "spark")


def _dir(path: str, now: datetime) -> Entry:
    return Entry(path, "dir", 0, 0, 0, now, None, "hdfs", "supergroup")


def _file(path: str, size: int, mtime: datetime, owner: str, *, rep: int = 3) -> Entry:
    blocks = max(1, -(-size // BLOCK))
    return Entry(path, "file", size, rep, blocks, mtime, mtime, owner, "hadoop")
