"""End-to-end log ingestion: lines/s from HTTP through parsing and aggregation to committed rollups.

One real `fleetops serve` process (fresh database, the simulated 1,000-host fleet in its inventory
so transfers map to racks, change engine off, windows closed by event time only) takes the simulated
fleet's Spark/YARN/HDFS lines as Vector's HTTP sink sends them: JSON lines, gzip, `--batch` lines a
request, from `--clients` concurrent clients as fast as the server answers (a 429 is retried after
its Retry-After). Lines are generated and compressed before the clock starts; batches go out in
time order, as shippers send them.

- accepted: first request sent to last line committed (every answer comes after the commit).
- rollups: first request sent to the rollups of every line's windows committed. The event-time
  watermark only moves with newer lines, so a closing batch stamped two minutes after the last
  line follows the rest (as the next minute of a live fleet would); the run waits until the stored
  resume point has passed the last line, then checks that the rollups count every line.
- per CPU-s: lines divided by the server process's CPU time (user + system, all threads) over the
  same span, from /proc: the "per core" figure, independent of what else the machine runs.
- peak RSS: the server's VmHWM.

Named baselines, same lines, same run, one core each: JSON decode alone (`json.loads` per line,
after gunzip), fleetops' HTTP decode (`parse_json_records`, which also reads times and labels), and
the floor of storing the lines: one `executemany` per batch into a fresh `log_lines` table of the
same backend, rows prepared beforehand, no parsing, no templates, no aggregation.

Run: `.venv/bin/python bench/ingest.py [--lines 300000] [--clients 4] [--batch 5000]
[--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]` (PostgreSQL: a fresh schema,
dropped afterwards). About a minute on 2 cores. `--profile FILE` (.svg or speedscope .json)
samples the server's GIL holder with py-spy (`pip install py-spy`) while it ingests.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from serving import serve
from sqlalchemy import Engine, func, select, text

from fleetops.audit.service import AuditContext
from fleetops.auth import service as auth_service
from fleetops.db import make_engine, make_session_factory, session_scope, upgrade
from fleetops.inventory.apply import apply_document
from fleetops.logs import service as logs_service
from fleetops.logs.ingest.http import parse_json_records
from fleetops.models import LogLine, RollupState, TemplateCount
from fleetops.sim.feeder import ndjson
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload
from fleetops.sim.workload_model import SimLine

PASSWORD = "bench-admin-pass"
CLOSING_AFTER = timedelta(minutes=2)  # the closing batch's distance past the last line
CLOSING_LINES = 200
TIMEOUT_S = 900


@dataclass
class Load:
    """The pre-generated traffic: gzip bodies in time order, and the closing batch."""

    lines: list[SimLine]
    bodies: list[bytes]
    sizes: list[int]
    closing: bytes
    closing_lines: int
    last_ts: datetime


@dataclass
class Run:
    lines: int
    accepted_s: float = 0.0
    rollups_s: float = 0.0
    cpu_accepted_s: float = 0.0
    cpu_rollups_s: float = 0.0
    peak_rss_mib: float = 0.0
    in_rollups: int = 0
    stored: int = 0
    retries: int = 0
    commits: int = 0


# --- traffic ---------------------------------------------------------------------------------


def make_load(count: int, *, hosts: int, batch: int) -> Load:
    """`count` simulated lines ending a little before now, in gzip bodies of `batch` lines."""
    fleet = generate(hosts=hosts, racks=max(1, hosts // 25))
    minutes = count / 40_000 + 10  # a 1,000-host fleet logs about 65k lines a simulated minute
    start = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)
    workload = Workload(fleet, seed=7, start=start)
    lines: list[SimLine] = []
    at = start
    while len(lines) < count:
        at += timedelta(seconds=10)
        lines += workload.advance(at)
    lines = lines[:count]
    last = lines[-1].ts
    after = [
        line
        for line in workload.advance(last + CLOSING_AFTER)
        if line.ts > last + CLOSING_AFTER / 2
    ]
    if not after:
        raise SystemExit("the simulation logged nothing after the last line; use more --lines")
    chunks = [lines[i : i + batch] for i in range(0, len(lines), batch)]
    after = after[-CLOSING_LINES:]
    return Load(
        lines=lines,
        bodies=[gzip.compress(ndjson(c)) for c in chunks],
        sizes=[len(c) for c in chunks],
        closing=gzip.compress(ndjson(after)),
        closing_lines=len(after),
        last_ts=last,
    )


async def post_all(url: str, token: str, load: Load, clients: int) -> int:
    """Send every body, `clients` at a time, in order; return how many answers were 429."""
    headers = _headers(token)
    queue = iter(range(len(load.bodies)))
    retries = 0

    async def client() -> None:
        nonlocal retries
        async with httpx.AsyncClient(timeout=120) as http:
            for index in queue:
                while True:
                    response = await http.post(url, content=load.bodies[index], headers=headers)
                    if response.status_code != 429:
                        break
                    retries += 1
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                if response.status_code != 200:
                    raise SystemExit(f"POST failed: {response.status_code} {response.text[:300]}")
                if response.json()["accepted"] != load.sizes[index]:
                    raise SystemExit(f"batch {index}: {response.json()}")

    await asyncio.gather(*(client() for _ in range(clients)))
    return retries


# --- the server ------------------------------------------------------------------------------


def prepare(database_url: str, hosts: int) -> tuple[str, str]:
    """Migrate, load the fleet, and create an ingest token and an admin API token."""
    engine = make_engine(database_url)
    upgrade(engine)
    ctx = AuditContext(actor="bench")
    with session_scope(make_session_factory(engine)) as session:
        apply_document(session, ctx, generate(hosts=hosts, racks=max(1, hosts // 25)))
        _, ingest = logs_service.create_ingest_token(session, ctx, name="bench")
        created = auth_service.ensure_admin(session, password=PASSWORD)
        assert created is not None
        _, api = auth_service.create_token(session, ctx, user=created[0], name="bench")
    engine.dispose()
    return ingest, api


@contextmanager
def server(database_url: str, data_dir: Path) -> Iterator[tuple[str, int]]:
    """A `fleetops serve` process; yields its URL and pid."""
    with serve(
        database_url,
        data_dir,
        FLEETOPS_ENGINE_ENABLED="false",
        FLEETOPS_ADMIN_PASSWORD=PASSWORD,
        FLEETOPS_LOGS_REALTIME="false",  # past lines: event time alone closes windows
        FLEETOPS_INGEST_RATE_LINES="0",  # the server's own ceiling, not a per-token allowance
    ) as found:
        yield found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_rollups(engine: Engine, last_ts: datetime) -> None:
    """Until the stored resume point (oldest open window) is past the last line."""
    deadline = time.monotonic() + TIMEOUT_S
    query = select(RollupState.watermark).where(RollupState.name == "aggregator")
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            mark = conn.scalar(query)
        if mark is not None and mark.replace(tzinfo=UTC) > last_ts:
            return
        time.sleep(0.05)
    raise SystemExit(f"rollups did not pass {last_ts} within {TIMEOUT_S} s")


def run_server(database_url: str, load: Load, *, hosts: int, clients: int, profile: str) -> Run:
    ingest_token, api_token = prepare(database_url, hosts)
    result = Run(lines=len(load.lines))
    data_dir = Path(tempfile.mkdtemp(prefix="fleetops-bench-ingest-"))
    engine = make_engine(database_url)
    try:
        with server(database_url, data_dir) as (url, pid):
            # The server caches a token once resolved: resolve it before the clock starts.
            asyncio.run(_post(f"{url}/api/v1/logs", ingest_token, gzip.compress(b"")))
            spy = _profiler(pid, profile) if profile else None
            cpu0 = cpu_seconds(pid)
            t0 = time.perf_counter()
            result.retries = asyncio.run(
                post_all(f"{url}/api/v1/logs", ingest_token, load, clients)
            )
            result.accepted_s = time.perf_counter() - t0
            result.cpu_accepted_s = cpu_seconds(pid) - cpu0
            asyncio.run(_post(f"{url}/api/v1/logs", ingest_token, load.closing))
            wait_rollups(engine, load.last_ts)
            result.rollups_s = time.perf_counter() - t0
            result.cpu_rollups_s = cpu_seconds(pid) - cpu0
            result.peak_rss_mib = peak_rss_mib(pid)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
            stats = httpx.get(
                f"{url}/api/v1/logs/stats", headers={"Authorization": f"Bearer {api_token}"}
            ).json()
            result.commits = stats["commits"]
        with engine.connect() as conn:
            result.in_rollups = conn.scalar(select(func.sum(TemplateCount.count))) or 0
            result.stored = conn.scalar(select(func.count()).select_from(LogLine)) or 0
    finally:
        engine.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


async def _post(url: str, token: str, body: bytes) -> None:
    async with httpx.AsyncClient(timeout=120) as http:
        response = await http.post(url, content=body, headers=_headers(token))
        response.raise_for_status()


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/x-ndjson",
        "Content-Encoding": "gzip",
    }


def _profiler(pid: int, path: str) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    fmt = "speedscope" if path.endswith(".json") else "flamegraph"
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--threads",
            "--format",
            fmt,
            "-o",
            path,
            "--rate",
            "200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --- baselines -------------------------------------------------------------------------------


@dataclass
class Timing:
    wall: float
    cpu: float  # this process's CPU time: for PostgreSQL its server's work is not in it


@contextmanager
def timing() -> Iterator[Timing]:
    result = Timing(0.0, 0.0)
    wall, cpu = time.perf_counter(), time.process_time()
    yield result
    result.wall, result.cpu = time.perf_counter() - wall, time.process_time() - cpu


def json_decode(load: Load) -> Timing:
    """Gunzip every body and `json.loads` each line."""
    n = 0
    with timing() as took:
        for body in load.bodies:
            for line in gzip.decompress(body).split(b"\n"):
                json.loads(line)
                n += 1
    assert n == len(load.lines)
    return took


def fleetops_decode(load: Load) -> Timing:
    """Gunzip every body and decode it as the HTTP endpoint does."""
    n = 0
    with timing() as took:
        for body in load.bodies:
            n += len(parse_json_records(gzip.decompress(body), peer="127.0.0.1"))
    assert n == len(load.lines)
    return took


def insert_floor(database_url: str, load: Load, batch: int) -> Timing:
    """Store the lines with one `executemany` and commit per batch, nothing else."""
    engine = make_engine(database_url)
    upgrade(engine)
    sqlite = engine.dialect.name == "sqlite"
    now = datetime.now(UTC).replace(tzinfo=None)
    columns = ("ts", "received_at", "host", "source", "file", "message", "labels", "flags", "size")
    rows = [
        (
            _stamp(line.ts, sqlite),
            _stamp(now, sqlite),
            line.host,
            "bench",
            line.file,
            line.message,
            json.dumps(line.labels, separators=(",", ":")),
            0,
            len(line.message.encode()),
        )
        for line in load.lines
    ]
    mark = "?" if sqlite else "%s"
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f"INSERT INTO log_lines ({names}) VALUES ({', '.join([mark] * len(columns))})"
    with timing() as took:
        for i in range(0, len(rows), batch):
            with engine.begin() as conn:
                conn.exec_driver_sql(sql, rows[i : i + batch])
    engine.dispose()
    return took


def _stamp(ts: datetime, sqlite: bool) -> datetime | str:
    naive = ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts
    return naive.isoformat(" ", "microseconds") if sqlite else naive


# --- databases -------------------------------------------------------------------------------


@contextmanager
def fresh_database(base: str | None, name: str) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a new PostgreSQL schema (dropped after)."""
    if base is None or base.startswith("sqlite"):
        folder = Path(tempfile.mkdtemp(prefix="fleetops-bench-db-"))
        try:
            yield f"sqlite:///{folder / (name + '.db')}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"fleetops_bench_{name}_{os.getpid()}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    joiner = "&" if "?" in base else "?"
    try:
        yield f"{base}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


# --- report ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5000, help="lines per request")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL base URL (default SQLite)")
    parser.add_argument("--profile", default="", help="py-spy output (.svg or .json)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    load = make_load(args.lines, hosts=args.hosts, batch=args.batch)
    size = sum(len(b) for b in load.bodies)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"{len(load.lines):,} lines from {args.hosts:,} simulated hosts "
        f"({load.lines[0].ts:%H:%M:%S}-{load.last_ts:%H:%M:%S} UTC), {len(load.bodies)} gzip "
        f"bodies of {args.batch:,} lines ({size / 2**20:.1f} MiB), {args.clients} clients, "
        f"{backend}; generated in {time.perf_counter() - t0:.1f} s\n"
    )
    with fresh_database(args.database_url, "server") as url:
        run = run_server(url, load, hosts=args.hosts, clients=args.clients, profile=args.profile)
    with fresh_database(args.database_url, "floor") as url:
        floor = insert_floor(url, load, args.batch)
    decode_json = json_decode(load)
    decode_fleetops = fleetops_decode(load)

    n = len(load.lines)
    rows = [
        ("baseline: JSON decode alone (gunzip + json.loads)", decode_json.wall, decode_json.cpu),
        ("baseline: fleetops HTTP decode (parse_json_records)", *astuple(decode_fleetops)),
        (f"baseline: {backend} executemany floor (no parsing)", floor.wall, floor.cpu),
        ("fleetops serve: accepted (committed)", run.accepted_s, run.cpu_accepted_s),
        ("fleetops serve: through to committed rollups", run.rollups_s, run.cpu_rollups_s),
    ]
    print(f"{'path':<54} {'seconds':>8} {'lines/s':>10} {'CPU s':>7} {'per CPU-s':>10}")
    for name, wall, cpu in rows:
        print(f"{name:<54} {wall:>8.2f} {n / wall:>10,.0f} {cpu:>7.2f} {n / cpu:>10,.0f}")
    print(
        f"\nserver peak RSS {run.peak_rss_mib:,.0f} MiB; {run.commits} group commits "
        f"({n / max(run.commits, 1):,.0f} lines each); {run.retries} answers 429; "
        f"{run.stored:,} lines stored, {run.in_rollups:,} counted in rollups "
        f"({n - run.in_rollups:,} arrived after their window closed)"
    )
    per_core = n / run.cpu_rollups_s
    verdict = "meets" if per_core >= 50_000 else "misses"
    print(f"goal >= 50,000 lines/s per core through to rollups: {per_core:,.0f} ({verdict})")
    if run.stored != n + load.closing_lines:
        raise SystemExit(f"stored {run.stored:,} lines; sent {n:,} + {load.closing_lines}")


if __name__ == "__main__":
    main()
