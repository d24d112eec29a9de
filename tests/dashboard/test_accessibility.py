"""An axe-core scan of every page in Chromium: no serious or critical violation of WCAG 2 A/AA,
in the light theme and the dark one.

The detail pages are scanned on real rows: a change with its host steps, a finding, devices moved
through the lifecycle with their repair tickets, inspection results and baselines, log templates
and lines, and the diagnosis rollups, all committed into the live server's database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect
from sqlalchemy import select

from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inventory.document import HostDoc
from fleetops.models import (
    Host,
    HostErrorCount,
    HostRun,
    HostTaskWindow,
    LogLine,
    LogTemplate,
    StepRun,
    TemplateCount,
    utcnow,
)
from fleetops.sim import filesystems
from tests.analytics.resources.test_reports import report_body as resource_report
from tests.analytics.storage.test_reports import report as storage_report
from tests.devices.test_ui import seed_devices
from tests.findings.factory import lines_ref
from tests.findings.factory import seed as seed_findings
from tests.fixtures.app import seed_users
from tests.fixtures.browser import LiveServer
from tests.inspection.test_pages import MODEL
from tests.inspection.test_pages import seed as seed_inspection
from tests.logs.test_diagnosis_api import job, latency, link, minute, write

pytestmark = pytest.mark.ui

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
BAD = ("serious", "critical")
TEMPLATE = 9001  # far above the ids the server's own miner hands out
MISSING = ("/hosts/no-such-host", "/diagnosis/latency")  # pages that answer with the error page


@dataclass(frozen=True)
class Entities:
    """Ids and names of the rows the detail pages show."""

    change: int
    change_host: str
    finding: int
    device: str
    ticket: int
    run: int
    inspected: str
    storage_report: int
    resource_report: int


def save_storage_report(server: LiveServer, tmp: Path) -> int:
    """A storage report of the hand-built namespace, saved through the API as the developer."""
    saved = httpx.post(
        f"{server.url}/api/v1/storage/reports",
        json=storage_report(tmp),
        headers=seed_users(server.db_url).headers("developer"),
        timeout=30,
    )
    assert saved.status_code == 201, saved.text
    return int(saved.json()["id"])


def save_resource_report(server: LiveServer, tmp: Path) -> int:
    """A resource report of a small trace, saved through the API as the developer."""
    saved = httpx.post(
        f"{server.url}/api/v1/resources/reports",
        json=resource_report(tmp),
        headers=seed_users(server.db_url).headers("developer"),
        timeout=30,
    )
    assert saved.status_code == 201, saved.text
    return int(saved.json()["id"])


def submit_change(server: LiveServer) -> int:
    """A change awaiting approval, submitted through the API as the developer."""
    body = {"workflow": "os-patch", "selector": "rack=r002", "params": {}, "title": "a11y"}
    change = httpx.post(
        f"{server.url}/api/v1/changes",
        json=body,
        headers=seed_users(server.db_url).headers("developer"),
        timeout=30,
    )
    assert change.status_code == 201, change.text
    return int(change.json()["id"])


def seed_host_steps(db_url: str, change: int, hostname: str) -> None:
    """One host's steps as the engine records them: a check that passed, a run that failed."""
    now = utcnow()
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        run = HostRun(
            change_id=change,
            stage_index=0,
            batch_index=0,
            hostname=hostname,
            state="failed",
            step_index=1,
            error="apt-get exited 100",
            started_at=now - timedelta(minutes=3),
            finished_at=now - timedelta(minutes=1),
        )
        session.add(run)
        session.flush()
        common = {"host_run_id": run.id, "step_index": 0, "operation": "shell"}
        session.add_all(
            [
                StepRun(**common, phase="check", state="succeeded", exit_code=0, stdout="ok\n"),
                StepRun(
                    **common,
                    phase="run",
                    state="failed",
                    exit_code=100,
                    stdout="Reading package lists...\n",
                    stderr="E: Could not get lock /var/lib/dpkg/lock-frontend\n",
                    error="exit code 100",
                    finished_at=now - timedelta(minutes=1),
                ),
            ]
        )
    engine.dispose()


def seed_facts(db_url: str, change: int, hosts: list[HostDoc]) -> None:
    """Filesystem facts as a collection records them, so the inode section shows its tables."""
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        ids = dict(session.execute(select(Host.hostname, Host.id)).all())
        for index, host in enumerate(hosts):
            run = HostRun(change_id=change, stage_index=0, batch_index=0,
                          host_id=ids[host.hostname], hostname=host.hostname, state="succeeded",
                          step_index=1)  # fmt: skip
            session.add(run)
            session.flush()
            session.add(
                StepRun(host_run_id=run.id, step_index=index, operation="filesystem_facts",
                        phase="run", state="succeeded", exit_code=0, finished_at=utcnow(),
                        stdout=filesystems.answer(host.hostname, host.model or "", seed=1))
            )  # fmt: skip
    engine.dispose()


def seed_logs(db_url: str, host: str) -> None:
    """A mined template with its lines and counts, jobs, latency, links and a host's tasks."""
    now = utcnow()
    write(
        db_url,
        LogTemplate(
            id=TEMPLATE,
            text="Slow BlockReceiver write packet to mirror took <*>ms",
            count=120,
            first_seen=now - timedelta(hours=2),
            last_seen=now - timedelta(minutes=1),
            example="Slow BlockReceiver write packet to mirror took 812ms",
        ),
        *(
            TemplateCount(start=minute(now, back), template_id=TEMPLATE, count=20, hosts=2)
            for back in (2, 5, 9)
        ),
        *(
            LogLine(
                ts=now - timedelta(seconds=30 - i),
                received_at=now,
                host=host,
                source="agent",
                file="/var/log/hadoop/datanode.log",
                offset=i,
                template_id=TEMPLATE,
                message=f"Slow BlockReceiver write packet to mirror took {800 + i}ms",
                labels={},
                flags=0,
                size=60,
            )
            for i in range(5)
        ),
        *(
            latency(minute(now, back), seconds=60, metric=m)
            for back in (1, 3)
            for m in ("job", "task")
        ),
        link(minute(now, 2), "r001", "r002", slow=4),
        link(minute(now, 2), "r002", "r001"),
        job("application_1_0001", state="finished", started=now - timedelta(minutes=9), seconds=95),
        job("application_1_0002", state="failed", started=now - timedelta(minutes=7), seconds=40),
        HostTaskWindow(
            start=minute(now, 3),
            host=host,
            tasks=20,
            failed=2,
            p50_ms=900.0,
            p95_ms=2500.0,
            ratio=3.1,
        ),
        HostErrorCount(start=minute(now, 3), host=host, signature="disk_io", count=4),
    )


@pytest.fixture(scope="module")
def entities(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Entities:
    hosts = [h.hostname for h in live_server.fleet.hosts]
    change_host = next(h.hostname for h in live_server.fleet.hosts if h.rack == "r002")
    change = submit_change(live_server)
    seed_host_steps(live_server.db_url, change, change_host)
    models = {h.model: h for h in live_server.fleet.hosts if h.model}
    seed_facts(live_server.db_url, change, list(models.values()))
    findings = seed_findings(
        live_server.db_url,
        {
            "entity": hosts[2],
            "title": f"{hosts[2]}: disk I/O errors",
            "evidence": [lines_ref(hosts[2])],
        },
        {"entity": hosts[5], "kind": "dimm_ecc", "severity": "critical"},
    )
    tickets = seed_devices(live_server.db_url, hosts, findings)
    inspected = seed_inspection(live_server.db_url)
    seed_logs(live_server.db_url, hosts[3])
    return Entities(
        change=change,
        change_host=change_host,
        finding=findings[0],
        device=hosts[2],
        ticket=tickets[0],
        run=inspected.failing,
        inspected="dn-0003",
        storage_report=save_storage_report(live_server, tmp_path_factory.mktemp("storage")),
        resource_report=save_resource_report(live_server, tmp_path_factory.mktemp("resources")),
    )


def pages(server: LiveServer, seeded: Entities) -> list[str]:
    host = server.fleet.hosts[0].hostname
    rack = server.fleet.hosts[0].rack
    return [
        f"/changes/{seeded.change}",  # awaiting approval: its commands, votes and the approve form
        f"/changes/{seeded.change}/hosts/{seeded.change_host}",
        "/",
        "/live",
        "/live?kiosk=1",
        "/hosts",
        f"/hosts/{host}",
        f"/hosts?selector=rack%3D{rack}",
        MISSING[0],
        "/racks",
        "/changes",
        "/workflows",
        "/workflows/os-patch",
        "/findings",
        f"/findings/{seeded.finding}",
        "/diagnosis",
        "/diagnosis/links",
        "/diagnosis/links/r001/r002",
        f"/diagnosis/host_tasks?entity={server.fleet.hosts[3].hostname}",
        MISSING[1],  # a view no page draws: the error page names the ones that exist
        "/logs/templates",
        f"/logs/search?template={TEMPLATE}",
        "/logs/search",
        "/devices",
        "/devices?state=isolated",
        f"/devices/{seeded.device}",
        "/repairs",
        "/repairs/metrics",
        f"/repairs/{seeded.ticket}",
        "/inspection",
        f"/inspection/runs/{seeded.run}",
        f"/inspection/hosts/{seeded.inspected}",
        f"/baselines/{MODEL}",
        "/audit",
        "/analytics/storage",
        f"/analytics/storage/{seeded.storage_report}",
        f"/analytics/resources?report={seeded.resource_report}",
        "/network/links/r001/r002/switch",
    ]


def violations(page: Page) -> list[str]:
    results: Any = Axe().run(page, options=WCAG)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in BAD:
            targets = [", ".join(n["target"]) for n in violation["nodes"][:3]]
            found.append(f"{violation['id']} ({violation['impact']}): {targets}")
    return found


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_passes_an_accessibility_scan(
    page: Page, live_server: LiveServer, entities: Entities, theme: str
) -> None:
    page.emulate_media(color_scheme=theme)
    found = {}
    page.goto("/login")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()  # the form again, with its error
    page.wait_for_load_state("networkidle")
    if bad := violations(page):
        found["/login"] = bad
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(live_server.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/hosts$|/$"))
    for path in pages(live_server, entities):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == (404 if path in MISSING else 200), path
        if path.startswith("/live"):  # an event stream never goes idle: wait for its panels
            expect(page.locator("#live-state")).to_have_text("Live")
        else:
            page.wait_for_load_state("networkidle")
        if bad := violations(page):
            found[path] = bad
    assert found == {}, "\n".join(f"{path}: {bad}" for path, bad in found.items())
