"""The inspection pages over HTTP, on rows written straight into `probe_runs` and `baselines`.

The verdicts stored are the library's own: `Baseline.build` over healthy disk curves and `judge`
of each host's curve, as the service stores them.
"""

from __future__ import annotations

import html
import re
from dataclasses import asdict, dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from fleetops.db import make_engine, make_session_factory, session_scope
from fleetops.inspection.baselines import Baseline, judge
from fleetops.inspection.probes import LoadSample, ProbeResult
from fleetops.models import BaselineRow, ChangeRequest, ProbeRun, utcnow
from tests.devices.test_pages import as_user
from tests.fixtures.app import Tokens
from tests.inspection.factories import IDLE

MODEL = "dn-gen3"
# The disk probe's five points: (label, unit, a healthy figure).
CURVE = (
    ("randread 4KiB qd1", "IOPS", 14_714.0),
    ("randread 4KiB qd32", "IOPS", 186_093.0),
    ("read 1MiB qd8", "MiB/s", 1_529.0),
    ("write 1MiB qd8", "MiB/s", 1_704.0),
    ("randwrite 4KiB qd32", "IOPS", 54_515.0),
)
HEALTHY = (0.97, 0.98, 0.99, 1.0, 1.01, 1.03)  # six healthy hosts, a few % apart
BUSY = LoadSample(
    cpus=8, load1_before=12.0, load1_after=12.4, busy_before=0.9, busy_during=1.0, steal_during=0.0
)
# The failing host: random reads at depth 32 collapsed to 21 %, random writes down to 60 %.
SLOW = {"randread 4KiB qd32": 0.21, "randwrite 4KiB qd32": 0.6}


def disk(
    scale: float = 1.0, *, low: dict[str, float] | None = None, load: LoadSample = IDLE
) -> ProbeResult:
    """A five-point fio curve: healthy figures times `scale`, the points in `low` times theirs."""
    low = low or {}
    return ProbeResult(
        probe="disk",
        tool_version="fio-3.33",
        points={name: value * scale * low.get(name, 1.0) for name, _, value in CURVE},
        units={name: unit for name, unit, _ in CURVE},
        load=load,
    )


@dataclass(frozen=True)
class Seeded:
    """Ids of what `seed` wrote, and the active baseline it judged with."""

    failing: int  # dn-0003, latest disk result fail, under change `change`
    passing: int  # dn-0004
    busy: int  # dn-0005, inconclusive
    error: int  # dn-0006, the probe printed nothing usable
    recovered: int  # dn-0007: failed a week ago, passes now
    unjudged: int  # wk-0011, model cn-gen4 has no baseline
    change: int
    baseline: Baseline
    versions: tuple[int, int]  # baselines rows: v1 (inactive), v2 (active)


def _run(hostname: str, result: ProbeResult | None, **fields: object) -> ProbeRun:
    measured = {}
    if result is not None:
        measured = {
            "points": result.points,
            "units": result.units,
            "load": asdict(result.load),
            "tool_version": result.tool_version or "",
        }
    defaults = {"model": MODEL, "probe": "disk", "host_state": "in_service", "duration_s": 31.0}
    return ProbeRun(hostname=hostname, **{**defaults, **measured, **fields})


def _judged(
    hostname: str, result: ProbeResult, baseline: Baseline, row: BaselineRow, **fields: object
) -> ProbeRun:
    verdict = judge(result, baseline)
    return _run(
        hostname,
        result,
        status=verdict.status,
        reasons=verdict.reasons,
        ratios=verdict.ratios,
        baseline_id=row.id,
        **fields,
    )


def _baseline_row(baseline: Baseline, version: int, **fields: object) -> BaselineRow:
    return BaselineRow(
        model=MODEL,
        probe=baseline.probe,
        version=version,
        samples=baseline.samples,
        bands={name: asdict(band) for name, band in baseline.bands.items()},
        **fields,
    )


def seed(db_url: str) -> Seeded:
    """Six healthy dn-gen3 hosts build baseline v2 (v1 was built from five, a month ago); then a
    failing, a passing, a busy, an erroring and a recovered host, and a host of a model without
    any baseline."""
    now = utcnow()
    healthy = [disk(f) for f in HEALTHY]
    first, current = Baseline.build(healthy[:5]), Baseline.build(healthy)
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:
        change = ChangeRequest(
            title="inspect dn-0003 after disk swap",
            selector="host=dn-0003",
            risk="low",
            state="succeeded",
            requester="operator",
            kind="adhoc",
        )
        v1 = _baseline_row(
            first,
            1,
            active=False,
            built_by="admin",
            reason="first build",
            built_at=now - timedelta(days=30),
        )
        v2 = _baseline_row(
            current,
            2,
            active=True,
            built_by="operator",
            reason="rebuilt after firmware 2.1",
            built_at=now - timedelta(days=2),
        )
        session.add_all([change, v1, v2])
        session.flush()
        for i, result in enumerate(healthy):
            session.add(
                _judged(f"dn-{i + 20:04d}", result, current, v2, at=now - timedelta(days=3))
            )
        rows = {
            "failing": _judged(
                "dn-0003",
                disk(low=SLOW),
                current,
                v2,
                change_id=change.id,
                host_state="verifying",
                at=now - timedelta(hours=1),
            ),
            "passing": _judged("dn-0004", disk(1.02), current, v2, at=now - timedelta(hours=2)),
            "busy": _judged(
                "dn-0005", disk(0.5, load=BUSY), current, v2, at=now - timedelta(minutes=10)
            ),
            "error": _run(
                "dn-0006",
                None,
                status="error",
                reasons=["fio printed no JSON: fio: failed to open /dev/sdb: Permission denied"],
                at=now - timedelta(minutes=10),
            ),
            "recovered": _judged("dn-0007", disk(), current, v2, at=now - timedelta(hours=3)),
            "unjudged": _run(
                "wk-0011",
                disk(0.8),
                model="cn-gen4",
                status="inconclusive",
                reasons=["no baseline for cn-gen4 disk: build one from 5 healthy hosts"],
                at=now,
            ),
        }
        # dn-0007's earlier result failed: only the latest result of a host counts.
        session.add(_judged("dn-0007", disk(low=SLOW), first, v1, at=now - timedelta(days=7)))
        session.add_all(rows.values())
        session.flush()
        seeded = Seeded(
            change=change.id,
            baseline=current,
            versions=(v1.id, v2.id),
            **{name: row.id for name, row in rows.items()},
        )
    engine.dispose()
    return seeded


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/json\")[^>]*>")
_HANDLER = re.compile(r"\son[a-z]+=")


def clean(page: str) -> None:
    """No inline script or handler (the CSP would block them; JSON data blocks are not run)."""
    assert _INLINE_SCRIPT.findall(page) == []
    assert not _HANDLER.search(page)
    assert page.rstrip().endswith("</html>")


def text_of(page: str) -> str:
    """The page's visible words, tags dropped and spaces collapsed, for phrase assertions."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def rows_of(page: str, table_class: str) -> list[str]:
    """The body rows of every table of that class, in page order."""
    tables = re.findall(rf'<table class="table {table_class}".*?</table>', page, re.S)
    assert tables, f"no table {table_class}"
    return [text_of(r) for t in tables for r in re.findall(r"<tbody>.*?</tbody>", t, re.S)
            for r in re.findall(r"<tr[ >].*?</tr>", r, re.S)]  # fmt: skip


@pytest.fixture
def seeded(client: TestClient, tokens: Tokens, db_url: str) -> Seeded:
    return seed(db_url)


def test_pages_need_a_login(client: TestClient, seeded: Seeded) -> None:
    for path in (
        "/inspection",
        f"/inspection/runs/{seeded.failing}",
        "/inspection/hosts/dn-0003",
        f"/baselines/{MODEL}",
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


def test_outliers_list_failing_hosts_worst_point_first(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    response = client.get("/inspection")
    assert response.status_code == 200
    page = response.text
    clean(page)
    assert '<a href="/inspection" aria-current="page">Inspection</a>' in page
    words = text_of(page)
    assert "Baseline version 2 : 6 healthy hosts" in words
    assert "by operator" in words
    # cn-gen4 (no baseline) first; in dn-gen3 the failing host, the error, the busy one.
    outliers = rows_of(page, "outliers")
    assert outliers[0].startswith("wk-0011 inconclusive no baseline for cn-gen4 disk")
    assert outliers[1:] == [
        "dn-0003 fail randread 4KiB qd32 : 21 % of the model's median (band 90–110 %) "
        f"and 1 more point 1 h ago run #{seeded.failing}",
        "dn-0006 error fio printed no JSON: fio: failed to open /dev/sdb: Permission denied "
        f"10 min ago run #{seeded.error}",
        "dn-0005 inconclusive the machine was busy: 1-minute load 12 on 8 CPUs (1.50 per CPU, "
        f"limit 0.5) (+1) 10 min ago run #{seeded.busy}",
    ]
    assert f'href="/inspection/runs/{seeded.failing}"' in page
    assert 'href="/inspection/hosts/dn-0003"' in page
    assert 'href="/baselines/dn-gen3"' in page
    counts = re.findall(r'data-status="(\w+)">(\d+)<', page)
    # cn-gen4 disk: one inconclusive; dn-gen3 disk: 6 healthy + dn-0004 + dn-0007 (latest) pass
    assert counts[:4] == [("fail", "0"), ("error", "0"), ("inconclusive", "1"), ("pass", "0")]
    assert counts[4:] == [("fail", "1"), ("error", "1"), ("inconclusive", "1"), ("pass", "8")]
    assert "dn-0007" not in page  # failed a week ago, passes now
    assert "no baseline" in words  # cn-gen4
    assert "wk-0011" in page


def test_outlier_filters(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    failing = client.get("/inspection", params={"status": "fail"}).text
    assert [r.split()[0] for r in rows_of(failing, "outliers")] == ["dn-0003"]
    assert re.findall(r'data-model="([^"]*)"', failing) == [MODEL]  # no failing cn-gen4 host
    passing = client.get("/inspection", params={"model": MODEL, "status": "pass"}).text
    hosts = [r.split()[0] for r in rows_of(passing, "outliers")]
    assert hosts == ["dn-0004", "dn-0007", *(f"dn-{i:04d}" for i in range(20, 26))]
    other = client.get("/inspection", params={"model": "cn-gen4"}).text
    assert [r.split()[0] for r in rows_of(other, "outliers")] == ["wk-0011"]
    assert "dn-0003" not in other
    none = client.get("/inspection", params={"probe": "memory"}).text
    assert "Nothing matches these filters" in none
    bad = client.get("/inspection", params={"status": "broken"})
    assert bad.status_code == 400
    assert "status must be one of fail | error | inconclusive | pass" in html.unescape(bad.text)


def test_report_of_a_failing_run(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    response = client.get(f"/inspection/runs/{seeded.failing}")
    assert response.status_code == 200
    page = response.text
    clean(page)
    words = text_of(page)
    assert '<span class="badge bad">fail</span>' in page
    reasons = re.findall(r"<li>([^<]+)</li>", page.split('id="reasons"')[1].split("</ul>")[0])
    assert [html.unescape(r) for r in reasons] == [
        "randread 4KiB qd32: 21 % of the model's median (band 90–110 %)",
        "randwrite 4KiB qd32: 60 % of the model's median (band 90–110 %)",
    ]
    assert 'href="/devices/dn-0003"' in page
    assert f'href="/changes/{seeded.change}"' in page
    assert "Load per CPU 0.01 1-min load 0.1 on 8 CPUs" in words
    assert "Busy before 2 % of the CPUs" in words
    assert "Steal 0 %" in words
    assert "version 2 6 healthy hosts" in words
    assert "Host state verifying" in words
    # The points table: value, unit, median, band and % of median, the low points marked.
    band = seeded.baseline.bands["randread 4KiB qd32"]
    assert rows_of(page, "curve-points")[1] == (
        f"randread 4KiB qd32 {186_093 * 0.21:,.0f} IOPS {band.median:,.0f} "
        f"{band.low:,.0f} – {band.high:,.0f} 21 %"
    )
    assert len(re.findall(r'<tr data-point="[^"]+" class="below">', page)) == 2
    # The chart's data block: points in measured order, normalised to the median.
    assert '<script type="application/json" id="inspection-curve">' in page
    assert '<script src="/static/inspection.js" defer></script>' in page
    block = page.split('id="inspection-curve">')[1].split("</script>")[0]
    assert '"normalised": true' in block
    assert re.findall(r'"label": "([^"]+)"', block) == [name for name, _, _ in CURVE]


def test_report_without_baseline_and_of_an_error(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    unjudged = client.get(f"/inspection/runs/{seeded.unjudged}").text
    clean(unjudged)
    words = text_of(unjudged)
    assert "Not judged against a baseline: cn-gen4 has no disk baseline yet" in words
    assert "no baseline for cn-gen4 disk: build one from 5 healthy hosts" in words
    block = unjudged.split('id="inspection-curve">')[1].split("</script>")[0]
    assert '"normalised": false' in block
    assert "change-link" not in unjudged
    error = client.get(f"/inspection/runs/{seeded.error}").text
    words = text_of(error)
    assert "the probe produced no usable figures" in words
    assert "The probe measured nothing: see the reasons above." in words
    assert "Not measured: the probe did not run to completion." in words
    assert 'id="inspection-chart"' not in error


def test_host_history_latest_first(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    page = client.get("/inspection/hosts/dn-0007").text
    clean(page)
    rows = rows_of(page, "host-runs")
    assert re.findall(r'<tr data-run="\d+" data-status="(\w+)">', page) == ["pass", "fail"]
    assert rows[0].startswith(f"run #{seeded.recovered} 3 h ago pass all 5 points within")
    assert "7 d ago fail randread 4KiB qd32 : 21 % of the model's median" in rows[1]
    assert rows[0].endswith("dn-gen3 v2 in service")
    assert rows[1].endswith("dn-gen3 v1 in service")
    assert f'href="/inspection/runs/{seeded.recovered}"' in page
    assert "2 results, newest first" in text_of(page)


def test_model_baselines(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    page = client.get(f"/baselines/{MODEL}").text
    clean(page)
    words = text_of(page)
    assert "active version 2: 6 healthy hosts" in words
    bands = rows_of(page, "bands")
    assert [r.split(" IOPS")[0].split(" MiB/s")[0] for r in bands] == [n for n, _, _ in CURVE]
    qd1 = seeded.baseline.bands["randread 4KiB qd1"]
    assert bands[0] == (
        f"randread 4KiB qd1 IOPS {qd1.median:,.0f} {qd1.mad:,.0f} {qd1.low:,.0f} "
        f"{qd1.high:,.0f} 90–110 %"
    )
    versions = rows_of(page, "versions")
    assert versions[0].startswith("2 6 2 d ago operator rebuilt after firmware 2.1 active")
    assert versions[1].startswith("1 5 30 d ago admin first build no")
    assert "11 hosts of this model have inspection results" in words


def test_unknown_ids_hosts_and_models_are_404(client: TestClient, seeded: Seeded) -> None:
    as_user(client, "viewer")
    missing = {
        "/inspection/runs/99999": "inspection run 99999 not found",
        "/inspection/hosts/nope-0001": "no inspection result for host 'nope-0001'",
        "/baselines/no-such-model": "no baseline for hardware model 'no-such-model'",
    }
    for path, message in missing.items():
        response = client.get(path)
        assert response.status_code == 404, path
        assert message in html.unescape(response.text)
        assert "<h1>NotFound</h1>" in response.text


def test_empty_fleet_says_how_to_inspect(client: TestClient, tokens: Tokens) -> None:
    as_user(client, "viewer")
    page = client.get("/inspection").text
    assert "No inspection yet" in page
    assert "fleetops inspect run --target SELECTOR" in page
