"""The Prometheus reader against a real Prometheus holding series written by the test."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetops.adapters.prometheus import PrometheusClient
from fleetops.analytics.resources import traces
from fleetops.analytics.resources.exceptions import SourceUnavailable, TraceNotFound
from fleetops.analytics.resources.sources import canonical, prometheus
from tests.fixtures.prometheus import running_prometheus
from tests.fixtures.server import free_port

GIB = 2**30
EVERY = 15  # seconds between samples
SAMPLES = 61
STEP = 60.0
# pod -> (container, node, CPU cores used, memory samples cycled, requests (cores, bytes))
PODS = {
    "web-7d9f8b6c5d-x2x7k": ("app", "n1", 0.5, (GIB // 2, GIB), (1.0, 2 * GIB)),
    "web-7d9f8b6c5d-q8rz2": ("app", "n2", 1.5, (GIB,), (1.0, 2 * GIB)),
    "db-0": ("postgres", "n1", 0.25, (2 * GIB,), (0.5, None)),  # no memory request
}


def openmetrics(t0: int) -> tuple[str, dict[str, list[tuple[int, float, float]]]]:
    """The file's text, and per pod its (time, counter, memory) samples."""
    cpu, mem, req, samples = [], [], [], {}
    for pod, (container, node, cores, memory, requests) in PODS.items():
        labels = f'namespace="shop",pod="{pod}",container="{container}"'
        rows = [
            (t0 + 7 + EVERY * k, cores * EVERY * k, float(memory[k % len(memory)]))
            for k in range(SAMPLES)
        ]
        samples[pod] = rows
        cpu += [
            f'container_cpu_usage_seconds_total{{{labels},node="{node}"}} {c} {t}'
            for t, c, _ in rows
        ]
        mem += [
            f'container_memory_working_set_bytes{{{labels},node="{node}"}} {m:.0f} {t}'
            for t, _, m in rows
        ]
        for resource, value in zip(("cpu", "memory"), requests, strict=True):
            if value is not None:
                series = f'kube_pod_container_resource_requests{{{labels},resource="{resource}"}}'
                req += [f"{series} {value} {t}" for t, _, _ in rows]
    owner = [
        'kube_pod_owner{namespace="shop",pod="web-7d9f8b6c5d-x2x7k",owner_kind="ReplicaSet",'
        f'owner_name="web-7d9f8b6c5d"}} 1 {t}'
        for t, _, _ in samples["web-7d9f8b6c5d-x2x7k"]
    ]
    text = "\n".join(
        [
            "# TYPE container_cpu_usage_seconds_total unknown", *cpu,
            "# TYPE container_memory_working_set_bytes gauge", *mem,
            "# TYPE kube_pod_container_resource_requests gauge", *req,
            "# TYPE kube_pod_owner gauge", *owner,
            "# EOF",
        ]
    )  # fmt: skip
    return text + "\n", samples


@pytest.fixture
def loaded(tmp_path: Path) -> object:
    t0 = (int(time.time()) // 3600 - 3) * 3600
    text, samples = openmetrics(t0)
    path = tmp_path / "series.om"
    path.write_text(text)
    with running_prometheus(tmp_path / "prometheus", openmetrics=path) as server:
        yield server, t0, samples


def read(url: str, t0: int, *, name: str = "pr") -> tuple[object, list[canonical.Loaded]]:
    db = traces.connect()
    start = datetime.fromtimestamp(t0 + 120, UTC)
    end = datetime.fromtimestamp(t0 + 720, UTC)

    async def go() -> list[canonical.Loaded]:
        client = PrometheusClient(url, timeout=10)
        try:
            return await prometheus.load(
                db, client, name=name, url=url, start=start, end=end, step=STEP
            )
        finally:
            await client.aclose()

    return db, asyncio.run(go())


def test_averages_and_requests_match_the_series_written(loaded: tuple) -> None:  # type: ignore[type-arg]
    server, t0, samples = loaded
    db, (source,) = read(server.url, t0)
    steps = [t0 + 120 + 60 * i for i in range(11)]
    assert (source.layout, source.cpu_unit, source.mem_unit) == ("prometheus", "cores", "GiB")
    assert (source.rows, source.skipped) == (22, 11)  # db-0 has no memory request
    rows = db.execute(  # type: ignore[attr-defined]
        "select instance, arrival_s, duration_s, task, machine, req_cpu, req_mem, cpu, mem, "
        "mem_peak from pr_usage order by instance, arrival_s"
    ).fetchall()
    expected = []
    for pod in sorted(p for p in PODS if p.startswith("web")):
        container, node, cores, _, (req_cpu, req_mem) = PODS[pod]
        for t in steps:
            window = [m for at, _, m in samples[pod] if t - STEP <= at <= t]
            expected.append(
                (
                    f"shop/{pod}/{container}",
                    t - STEP,
                    STEP,
                    "shop/web/app",  # owner stripped of its ReplicaSet hash, or from the name
                    node,
                    req_cpu,
                    req_mem / GIB,
                    cores,
                    sum(window) / len(window) / GIB,
                    max(window) / GIB,
                )
            )
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert got[:7] == want[:7]
        assert all(math.isclose(g, w, rel_tol=1e-9) for g, w in zip(got[7:], want[7:], strict=True))
    # the cycled pod averages 0.75 GiB with a peak of 1 GiB in every step
    assert {r[8] for r in rows if "x2x7k" in r[0]} == {0.75}


def test_a_range_without_the_metrics_says_which_is_absent(loaded: tuple) -> None:  # type: ignore[type-arg]
    server, t0, _ = loaded
    with pytest.raises(TraceNotFound, match="no series of container_cpu_usage_seconds_total"):
        read(server.url, t0 - 86_400)


def test_an_unreachable_prometheus_says_so() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        read(url, int(time.time()) - 3600)


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("web-7d9f8b6c5d-x2x7k", "web"),
        ("node-exporter-x2x7k", "node-exporter"),
        ("db-0", "db"),
        ("standalone", "standalone"),
    ],
)
def test_a_pod_name_gives_its_workload(pod: str, workload: str) -> None:
    assert prometheus.workload_of(pod) == workload


def test_a_namespace_must_be_a_dns_label() -> None:
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a Kubernetes namespace"):
        prometheus.check(start=moment, end=moment.replace(hour=1), step=60, namespace='a"} or x')
