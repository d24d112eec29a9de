"""A stateful fuzz of the REST API: schemathesis with every phase against a real `fleetops serve`.

One server process (fresh SQLite database, or a fresh PostgreSQL schema with `--database-url`)
over a simulated fleet of `--hosts` hosts with a few minutes of its logs ingested (so templates and
rollups exist), and an admin token minted for the run. Schemathesis
reads the served OpenAPI document and runs its four phases (examples, coverage, fuzzing, and the
stateful phase that follows the document's links from create to read, update and delete) with
`--examples` cases per operation and every check. Token and user endpoints are left out so the
fuzzer cannot revoke its own credential or disable its own user.

The summary counts failures per check. The three that must be zero:

- server errors (`not_a_server_error`): a 5xx is a bug whatever the input;
- undocumented statuses (`status_code_conformance`): a status the document does not list;
- schema mismatches (`response_schema_conformance`, `positive_data_acceptance`): an answer out of
  its schema, or input the document calls valid refused as malformed (a business refusal, 409, is
  fine).

The other checks are reported for reading. The baseline is the published OpenAPI document itself:
what a generated client would send. Exit code 1 when any of the three is non-zero.

Run: `.venv/bin/python bench/fuzz.py [--examples 50] [--hosts 30] [--seed 1]
[--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]`. About 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from serving import serve
from sqlalchemy import text

from fleetops.audit.service import AuditContext
from fleetops.auth import service as auth_service
from fleetops.db import make_engine, make_session_factory, session_scope, upgrade
from fleetops.inventory.apply import apply_document
from fleetops.logs import service as logs_service
from fleetops.sim.feeder import ndjson
from fleetops.sim.fleet import generate
from fleetops.sim.workload import Workload

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "fuzz-admin-pass"
MUST_BE_ZERO = {
    "not_a_server_error": "server errors",
    "status_code_conformance": "undocumented statuses",
    "response_schema_conformance": "schema mismatches (answers)",
    "positive_data_acceptance": "schema mismatches (valid input refused)",
}
# The fuzzer's own credential stays usable: it may not revoke tokens or disable users.
EXCLUDED_PATHS = r"^/api/v1/(tokens|users)(/.*)?$|^/api/v1/logs/tokens"


def prepare(database_url: str, hosts: int) -> tuple[str, str]:
    """Migrate, load a simulated fleet, and mint an admin API token and an ingest token."""
    engine = make_engine(database_url)
    upgrade(engine)
    ctx = AuditContext(actor="fuzz")
    with session_scope(make_session_factory(engine)) as session:
        apply_document(session, ctx, generate(hosts=hosts, racks=max(1, hosts // 10)))
        created = auth_service.ensure_admin(session, password=PASSWORD)
        assert created is not None
        _, token = auth_service.create_token(session, ctx, user=created[0], name="fuzz")
        _, ingest = logs_service.create_ingest_token(session, ctx, name="fuzz")
    engine.dispose()
    return token, ingest


def seed_logs(url: str, ingest: str, hosts: int) -> None:
    """A few minutes of the simulated fleet's logs, so templates and rollups exist to read."""
    fleet = generate(hosts=hosts, racks=max(1, hosts // 10))
    start = datetime.now(UTC) - timedelta(minutes=10)
    workload = Workload(fleet, seed=1, start=start)
    lines = workload.advance(start + timedelta(minutes=5))[:5000]
    headers = {
        "Authorization": f"Bearer {ingest}",
        "Content-Type": "application/x-ndjson",
        "Content-Encoding": "gzip",
    }
    answer = httpx.post(f"{url}/api/v1/logs", content=gzip.compress(ndjson(lines)), headers=headers)
    answer.raise_for_status()


@contextmanager
def server(database_url: str, data_dir: Path) -> Iterator[str]:
    """A `fleetops serve` process (the change engine on, the simulated executor); its URL."""
    with serve(
        database_url,
        data_dir,
        FLEETOPS_ADMIN_PASSWORD=PASSWORD,
        FLEETOPS_EXECUTOR="simulated",
        FLEETOPS_HEALTH_POLICY_ENABLED="false",
    ) as (url, _):
        yield url


@contextmanager
def database(url: str | None, tmp: Path) -> Iterator[str]:
    """The given PostgreSQL database in a fresh schema (dropped afterwards), or a SQLite file."""
    if url is None:
        yield f"sqlite:///{tmp / 'fuzz.db'}"
        return
    schema = f"fleetops_fuzz_{os.getpid()}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def fuzz(url: str, token: str, args: argparse.Namespace, report: Path) -> int:
    """Run schemathesis; its exit code (the JUnit report holds the failures)."""
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    command = [
        st,
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--phases",
        args.phases,
        "--checks",
        "all",
        "--max-examples",
        str(args.examples),
        "--seed",
        str(args.seed),
        "--exclude-path-regex",
        EXCLUDED_PATHS,
        "--workers",
        "1",
        "--continue-on-failure",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--output-truncate",
        "true",
    ]
    print(f"$ st run {url}/openapi.json --phases {args.phases} -n {args.examples}", flush=True)
    out = None if args.verbose else subprocess.DEVNULL
    # The config's hooks (how to generate a selector) are a module of the tests package.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, stdout=out, check=False, cwd=ROOT, env=env).returncode


# Schemathesis' failure codes (`st explain CODE`), by what they mean here.
CODES = {
    "ST101": "not_a_server_error",
    "ST102": "not_a_server_error",
    "ST103": "status_code_conformance",
    "ST108": "response_schema_conformance",
    "ST109": "response_schema_conformance",
    "ST202": "positive_data_acceptance",
    "ST201": "negative_data_rejection",
    "ST104": "content_type_conformance",
    "ST105": "content_type_conformance",
    "ST107": "response_headers_conformance",
    "ST203": "missing_required_header",
    "ST204": "unsupported_method",
    "ST205": "unsupported_method",
    "ST301": "use_after_free",
    "ST302": "ensure_resource_availability",
    "ST401": "ignored_auth",
    "ST402": "object_level_authorization",
    "ST112": "max_response_time",
}
_CODE = re.compile(r"\b(ST\d{3})\b")


_FAILURE = re.compile(r"^- (ST\d{3}) (.*)$")


def failures(report: Path) -> list[tuple[str, str, str]]:
    """(operation, check, what the answer said) per failed check in the JUnit report."""
    found: list[tuple[str, str, str]] = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for failure in [*case.iter("failure"), *case.iter("error")]:
            lines = (failure.text or failure.get("message") or "").splitlines()
            for n, line in enumerate(lines):
                if match := _FAILURE.match(line):
                    code, title = match.groups()
                    found.append(
                        (case.get("name", "?"), CODES.get(code, code), _answer(lines, n) or title)
                    )
    return found


def _answer(lines: list[str], start: int) -> str:
    """The status and body (or the first detail line) that follow a failure's title."""
    for n in range(start + 1, min(start + 30, len(lines))):
        if re.match(r"^\[\d{3}\]", lines[n]):
            body = next((x.strip() for x in lines[n + 1 : n + 4] if x.strip()), "")
            return f"{lines[n].strip()} {body}"[:240]
        if _FAILURE.match(lines[n]) or "Test Case ID" in lines[n]:
            break
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50, help="cases per operation and phase")
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--verbose", action="store_true", help="show schemathesis' own output")
    parser.add_argument("--keep", type=Path, help="copy the JUnit report and server log here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetops-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        with database(args.database_url, tmp) as db_url:
            token, ingest = prepare(db_url, args.hosts)
            (tmp / "data").mkdir()
            started = time.monotonic()
            with server(db_url, tmp / "data") as url:
                seed_logs(url, ingest, args.hosts)
                operations = len(
                    [
                        m
                        for item in httpx.get(f"{url}/openapi.json").json()["paths"].values()
                        for m in item
                    ]
                )
                fuzz(url, token, args, tmp / "junit.xml")
            elapsed = time.monotonic() - started
            found = failures(tmp / "junit.xml") if (tmp / "junit.xml").exists() else []
            log = (tmp / "data" / "server.log").read_text()
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for path in (tmp / "junit.xml", tmp / "data" / "server.log"):
                    if path.exists():
                        shutil.copy(path, args.keep / path.name)
    by_check = Counter(check for _, check, _ in found)
    print(f"\n{operations} operations, {args.examples} examples each, {elapsed:.0f} s")
    for check, title in MUST_BE_ZERO.items():
        print(f"  {title:42} {by_check.pop(check, 0)}")
    for check, n in sorted(by_check.items()):
        print(f"  {check:42} {n}  (reported, not gated)")
    for operation, check, line in sorted(set(found)):
        print(f"  - {operation}: {check}: {line}")
    tracebacks = log.count("Traceback (most recent call last)")
    print(f"  server tracebacks in its log              {tracebacks}")
    bad = sum(1 for _, check, _ in found if check in MUST_BE_ZERO) + tracebacks
    print("verdict:", "PASS" if bad == 0 else "FAIL")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
