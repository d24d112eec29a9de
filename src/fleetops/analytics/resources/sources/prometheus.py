"""Kubernetes container usage and requests from a Prometheus server, read into `{name}_usage`.

Per namespace/pod/container and step over [start, end]: CPU = `rate(container_cpu_usage_seconds_
total[step])` (cores, cAdvisor), memory = `avg_over_time(container_memory_working_set_bytes
[step])` and its `max_over_time` as the peak (bytes, read as GiB), requests from kube-state-
metrics' `kube_pod_container_resource_requests{resource="cpu"|"memory"}`. Each row is one
container over one step ending at the evaluation time. A pod belongs to its owner workload:
`kube_pod_owner` where present (a ReplicaSet's hash stripped to its Deployment, a CronJob's Job
suffix stripped), else the pod name without its generated suffixes. Container-steps without a
request (no kube-state-metrics series) are left out and counted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime

import duckdb

from fleetops.analytics.resources.exceptions import SourceUnavailable, TraceError, TraceNotFound
from fleetops.analytics.resources.sources import canonical
from fleetops.metrics.exceptions import PrometheusError
from fleetops.metrics.schemas import PrometheusReader, QueriedSeries

LAYOUT = "prometheus"
GIB = float(2**30)
MAX_POINTS = 11_000  # Prometheus refuses a range query of more points per series
SELECT = 'container!="", container!="POD"'
# Kubernetes' generated names use this alphabet (k8s.io/apimachinery rand.SafeEncodeString)
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
POD_SUFFIXES = (
    re.compile(rf"^(.+)-{SAFE}{{6,10}}-{SAFE}{{5}}$"),  # Deployment: replicaset hash + pod
    re.compile(rf"^(.+)-{SAFE}{{5}}$"),  # DaemonSet, Job: pod suffix
    re.compile(r"^(.+)-[0-9]+$"),  # StatefulSet ordinal
)
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
Key = tuple[str, str, str]


def queries(step: float, namespace: str | None) -> dict[str, str]:
    """The PromQL of each series read; `namespace` (a DNS label) narrows every one."""
    where = f'{SELECT}, namespace="{namespace}"' if namespace else SELECT
    scope = f', namespace="{namespace}"' if namespace else ""
    window = f"{step:g}s"
    by = "by (namespace, pod, container)"
    return {
        "cpu": "sum by (namespace, pod, container, node) "
        f"(rate(container_cpu_usage_seconds_total{{{where}}}[{window}]))",
        "mem": f"max {by} (avg_over_time(container_memory_working_set_bytes{{{where}}}[{window}]))",
        "mem_peak": f"max {by} (max_over_time(container_memory_working_set_bytes{{{where}}}"
        f"[{window}]))",
        "req_cpu": f'max {by} (kube_pod_container_resource_requests{{resource="cpu"{scope}}})',
        "req_mem": f'max {by} (kube_pod_container_resource_requests{{resource="memory"{scope}}})',
        "owner": "max by (namespace, pod, owner_kind, owner_name) "
        + (f'(kube_pod_owner{{namespace="{namespace}"}})' if namespace else "(kube_pod_owner)"),
    }


def check(*, start: datetime, end: datetime, step: float, namespace: str | None) -> None:
    """Refuse a range Prometheus would refuse, or a namespace that is not a DNS label."""
    if step <= 0 or end <= start:
        raise ValueError("the range must end after it starts, with a positive step")
    points = (end - start).total_seconds() / step + 1
    if points > MAX_POINTS:
        raise ValueError(
            f"{points:,.0f} steps of {step:g} s; at most {MAX_POINTS:,}: a longer step"
        )
    if namespace is not None and not NAMESPACE.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r} is not a Kubernetes namespace name")


async def load(
    db: duckdb.DuckDBPyConnection,
    reader: PrometheusReader,
    *,
    name: str,
    url: str,
    start: datetime,
    end: datetime,
    step: float,
    namespace: str | None = None,
) -> list[canonical.Loaded]:
    """Read container usage and requests over [start, end] into `{name}_usage`."""
    check(start=start, end=end, step=step, namespace=namespace)
    canonical.create(db, name)
    found: dict[str, list[QueriedSeries]] = {}
    for what, promql in queries(step, namespace).items():
        try:
            found[what] = await reader.query_range(promql, start=start, end=end, step=step)
        except PrometheusError as exc:
            raise SourceUnavailable(str(exc)) from None
    span = f"between {start:%Y-%m-%dT%H:%M:%SZ} and {end:%Y-%m-%dT%H:%M:%SZ}"
    for what, metric in (
        ("cpu", "container_cpu_usage_seconds_total (cAdvisor)"),
        ("req_cpu", "kube_pod_container_resource_requests (kube-state-metrics)"),
    ):
        if not found[what]:
            raise TraceNotFound(f"{url}: no series of {metric} {span}")
    columns, skipped = _rows(found, step)
    db.execute(
        f"insert into {name}_usage ({', '.join(canonical.NAMES)}) select "
        + ", ".join(f"unnest(?)::{kind}" for _, kind in canonical.USAGE_COLUMNS),
        [columns[column] for column in canonical.NAMES],
    )
    where = f"{url} {span}, step {step:g} s"
    rows = len(columns["arrival_s"])
    why = "container-steps without a CPU or memory request, or without memory usage"
    loaded = canonical.Loaded(LAYOUT, where, canonical.CORES, canonical.GIB, rows, skipped, why)
    return [canonical.record(db, name, loaded)]


def _by_key(series: list[QueriedSeries], scale: float = 1.0) -> dict[Key, dict[float, float]]:
    out: dict[Key, dict[float, float]] = {}
    for one in series:
        labels = one.labels
        key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
        out[key] = {moment.timestamp(): value / scale for moment, value in one.samples}
    return out


def _rows(
    found: dict[str, list[QueriedSeries]], step: float
) -> tuple[dict[str, list[object]], int]:
    """The usage columns, one entry per container-step with every value; and how many lacked one."""
    cpu = _by_key(found["cpu"])
    mem, peak = _by_key(found["mem"], GIB), _by_key(found["mem_peak"], GIB)
    req_cpu, req_mem = _by_key(found["req_cpu"]), _by_key(found["req_mem"], GIB)
    owners = _owners(found["owner"])
    nodes = {
        (s.labels.get("namespace", ""), s.labels.get("pod", "")): s.labels.get("node")
        for s in found["cpu"]
    }
    columns: dict[str, list[object]] = defaultdict(list)
    skipped = 0
    for key, samples in sorted(cpu.items()):
        namespace, pod, container = key
        workload = owners.get((namespace, pod)) or workload_of(pod)
        for at, used in sorted(samples.items()):
            values = [d.get(key, {}).get(at) for d in (mem, req_cpu, req_mem)]
            if any(v is None for v in values):
                skipped += 1
                continue
            row = {
                "arrival_s": at - step,
                "duration_s": step,
                "job": f"{namespace}/{workload}",
                "task": f"{namespace}/{workload}/{container}",
                "task_type": f"{namespace}/{workload}/{container}",
                "owner": namespace,
                "cluster": None,
                "machine": nodes.get((namespace, pod)),
                "instance": f"{namespace}/{pod}/{container}",
                "req_cpu": values[1],
                "req_mem": values[2],
                "cpu": used,
                "mem": values[0],
                "cpu_peak": None,
                "mem_peak": peak.get(key, {}).get(at),
            }
            for column, value in row.items():
                columns[column].append(value)
    return columns, skipped


def _owners(series: list[QueriedSeries]) -> dict[tuple[str, str], str]:
    """(namespace, pod) -> its workload, from kube_pod_owner."""
    out = {}
    for one in series:
        labels = one.labels
        kind, name = labels.get("owner_kind", ""), labels.get("owner_name", "")
        if not name or name == "<none>":
            continue
        if kind == "ReplicaSet":
            name = re.sub(rf"-{SAFE}{{6,10}}$", "", name)
        elif kind == "Job":
            name = re.sub(r"-[0-9]{8,}$", "", name)
        out[(labels.get("namespace", ""), labels.get("pod", ""))] = name
    return out


def workload_of(pod: str) -> str:
    """A pod's workload from its name: generated suffixes stripped (`web-7d9f8b6c5d-x2x7k`: web)."""
    for pattern in POD_SUFFIXES:
        matched = pattern.fullmatch(pod)
        if matched:
            return matched.group(1)
    return pod


def parse_time(text: str) -> datetime:
    """An ISO 8601 time (UTC unless it has an offset), or epoch seconds."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(f"{text!r}: not ISO 8601 or epoch seconds") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
