"""Selector resolution on a 10,000-host fleet, against filtering every host in Python.

Baseline: load the whole inventory (hosts with rack, cluster, labels) and filter it with Python
predicates and `fnmatch` — what a script over an exported inventory does. Run:
`.venv/bin/python bench/bench_selectors.py [--hosts N] [--postgres URL]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, selectinload

from fleetops.audit.service import AuditContext
from fleetops.db import make_engine, make_session_factory, session_scope, upgrade
from fleetops.inventory.apply import apply_document
from fleetops.inventory.selectors import select_hosts
from fleetops.models import Host
from fleetops.sim.fleet import generate

Row = dict[str, Any]
RANGE = {f"dn-0{i}" for i in range(100, 401)}
CASES: list[tuple[str, Callable[[Row], bool]]] = [
    ("rack=r007", lambda h: h["rack"] == "r007"),
    (
        "cluster=hadoop-prod,label:role=datanode",
        lambda h: h["cluster"] == "hadoop-prod" and h["labels"].get("role") == "datanode",
    ),
    ("dn-0[100-400]", lambda h: h["hostname"] in RANGE),
    (
        "wk-* except model=gp-gen2",
        lambda h: fnmatchcase(h["hostname"], "wk-*") and h["model"] != "gp-gen2",
    ),
    (
        "(rack=r001 or rack=r002) and label:os=rocky-9",
        lambda h: h["rack"] in ("r001", "r002") and h["labels"].get("os") == "rocky-9",
    ),
]


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    runs, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000, result


def load_all(session: Session) -> list[Row]:
    hosts = session.scalars(
        select_hosts("all").options(
            selectinload(Host.labels),
            selectinload(Host.rack),
            selectinload(Host.cluster),
            selectinload(Host.model),
        )
    ).all()
    return [
        {
            "hostname": h.hostname,
            "rack": h.rack.name if h.rack else None,
            "cluster": h.cluster.name if h.cluster else None,
            "model": h.model.name if h.model else None,
            "labels": {label.key: label.value for label in h.labels},
        }
        for h in hosts
    ]


def run(url: str, hosts: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        apply_document(
            session, AuditContext(actor="bench"), generate(hosts=hosts, racks=hosts // 25)
        )
    print(f"\n{engine.dialect.name}, {hosts} hosts")
    print(f"{'selector':<48} {'fleetops ms':>12} {'baseline ms':>12} {'speed-up':>9} {'hosts':>6}")
    with make_session_factory(engine, write=False)() as session:
        for selector, predicate in CASES:
            ours_ms, names = timed(
                lambda s=selector: session.scalars(
                    select_hosts(s).with_only_columns(Host.hostname)
                ).all()
            )
            base_ms, expected = timed(
                lambda p=predicate: sorted(h["hostname"] for h in load_all(session) if p(h)),
                repeat=3,
            )
            assert sorted(names) == expected, selector
            print(
                f"{selector:<48} {ours_ms:>12.1f} {base_ms:>12.1f} {base_ms / ours_ms:>8.1f}x "
                f"{len(names):>6}"
            )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.hosts)
    schema = "fleetops_bench"
    admin = make_engine(args.postgres)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
    except Exception as exc:  # PostgreSQL is optional for a benchmark run
        print(f"\npostgresql skipped: {exc}")
        return
    try:
        run(f"{args.postgres}?options=-csearch_path%3D{schema}", args.hosts)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


if __name__ == "__main__":
    main()
