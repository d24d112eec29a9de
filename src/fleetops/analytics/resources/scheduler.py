"""What a scheduler calls a workload group, and a recommendation in the scheduler's own units.

A report's groups are the trace's (`M|50.0|0.59`: task type, planned CPU and memory); a
scheduler knows queues (YARN: `root.batch.M`) or workloads (Kubernetes:
`NAMESPACE/KIND/NAME/CONTAINER`). The site's template (`resources_target_template`) names each
group's target. Names are checked against what each scheduler accepts, so nothing but a name
reaches its command line; CPU becomes millicores (Kubernetes) or whole vcores (YARN), memory in
a normalised unit becomes MiB through `resources_gb_per_memory_unit`.

The `scheduler_requests` operation takes its requests as one validated string,
`TARGET:CPU:MEMORY` entries joined by commas (`-` leaves a resource as it is), which its
pattern checks whole before anything renders.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fleetops.analytics.resources.exceptions import NothingToApply

if TYPE_CHECKING:
    from fleetops.config import Settings

Kind = Literal["yarn", "kubernetes"]
KINDS: tuple[Kind, ...] = ("yarn", "kubernetes")
WORKLOAD_KINDS = ("deployment", "statefulset", "daemonset", "replicaset", "job", "cronjob")
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
TARGET_PATTERNS: dict[Kind, str] = {
    "kubernetes": rf"{_LABEL}/({'|'.join(WORKLOAD_KINDS)})/{_LABEL}(\.{_LABEL})*/{_LABEL}",
    "yarn": r"root(\.[A-Za-z0-9_-]{1,64}){1,8}",
}
FIELDS = ("task_type", "plan_cpu", "plan_mem", "job", "task_name")
OPERATION = "scheduler_requests"
WORKFLOW = "apply-resource-requests"
QUOTAS_OPERATION = "scheduler_quotas"
QUOTAS_WORKFLOW = "collect-scheduler-quotas"


@dataclass(frozen=True, slots=True)
class Site:
    """The site's scheduler: its kind, the host its CLI runs on, how groups are named, and
    the GB a normalised memory unit stands for (None: memory cannot be applied)."""

    kind: Kind = "yarn"
    client: str = "label:role=namenode"
    template: str = "root.batch.{task_type}"
    gb_per_memory_unit: float | None = None

    @classmethod
    def of(cls, settings: Settings) -> Site:
        return cls(
            kind=settings.resources_scheduler,
            client=settings.resources_scheduler_client,
            template=settings.resources_target_template,
            gb_per_memory_unit=settings.resources_gb_per_memory_unit,
        )


def valid_target(kind: Kind, target: str) -> bool:
    """Whether `target` is a name the scheduler of `kind` takes (and nothing else)."""
    return re.fullmatch(TARGET_PATTERNS[kind], target) is not None


def group_fields(key: str, group: str) -> dict[str, str]:
    """A group's fields for the target template: `M|50.0|0.59` under key `task` gives
    task_type M, plan_cpu 50.0, plan_mem 0.59."""
    parts = group.split("|") if key != "job" else group.split("/", 1)
    names = {"task": FIELDS[:3], "profile": FIELDS[1:3], "job": FIELDS[3:]}[key]
    fields = dict.fromkeys(FIELDS, "")
    fields.update(zip(names, parts, strict=False))
    return fields


def target_of(template: str, kind: Kind, key: str, group: str) -> str:
    """The group's target under the site's template ("" when the template names a field the
    group lacks, or yields no name the scheduler takes)."""
    fields = group_fields(key, group)
    safe = {
        name: re.sub(r"[^A-Za-z0-9_-]", "_", value).strip("_") for name, value in fields.items()
    }
    if kind == "kubernetes":
        safe = {k: v.lower().replace("_", "-") for k, v in safe.items()}
    try:
        target = string.Formatter().vformat(template, (), safe)
    except (KeyError, IndexError, ValueError):
        return ""
    return target if valid_target(kind, target) else ""


def check_template(template: str) -> str | None:
    """Why a target template cannot name groups, or None."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"invalid template: {exc}"
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        return f"unknown fields {', '.join(unknown)} (known: {', '.join(FIELDS)})"
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """One target's new requests in the scheduler's units (None: left as it is)."""

    target: str
    cpu: int | None
    memory_mb: int | None

    def entry(self) -> str:
        cpu = "-" if self.cpu is None else str(self.cpu)
        memory = "-" if self.memory_mb is None else str(self.memory_mb)
        return f"{self.target}:{cpu}:{memory}"


def cpu_units(kind: Kind, cores: float) -> int:
    """Cores as the scheduler counts them: millicores (at least 1), or whole vcores (at least
    1, rounded up: a container never gets less than recommended)."""
    if kind == "kubernetes":
        return max(1, math.ceil(round(cores * 1000, 6)))
    return max(1, math.ceil(round(cores, 6)))


def memory_mb(units: float, gb_per_unit: float) -> int:
    """Normalised memory as MiB, rounded up."""
    return max(1, math.ceil(round(units * gb_per_unit * 1024, 6)))


def requests_param(requests: list[Request]) -> str:
    """The operation's `requests` value."""
    if not requests:
        raise NothingToApply("no accepted recommendation to apply")
    return ",".join(r.entry() for r in sorted(requests, key=lambda r: r.target))


# --- the scheduler's current quotas, as `scheduler_quotas` prints them --------------------------

_K8S_LINE = re.compile(r"^(?P<ns>[^/\s]+)/(?P<kind>[A-Za-z]+)/(?P<name>\S+)(?P<rest>.*)$")
_YARN_LINE = re.compile(
    r"^(?P<queue>root(\.[A-Za-z0-9_-]+)*)\s+maximum-allocation-(?P<what>vcores|mb)=(?P<v>\S*)$"
)


@dataclass(frozen=True, slots=True)
class Quota:
    """What the scheduler holds for one target now, as it writes it."""

    target: str
    cpu: str
    memory: str


def parse_quotas(kind: Kind, stdout: str) -> list[Quota]:
    """The targets and their current requests (Kubernetes) or container maximums (YARN) in a
    `scheduler_quotas` output; lines that are neither are skipped."""
    if kind == "kubernetes":
        return _kubernetes_quotas(stdout)
    found: dict[str, dict[str, str]] = {}
    for line in stdout.splitlines():
        if match := _YARN_LINE.match(line.strip()):
            found.setdefault(match["queue"], {})[match["what"]] = match["v"]
    return [
        Quota(queue, values.get("vcores", ""), values.get("mb", ""))
        for queue, values in sorted(found.items())
    ]


def _kubernetes_quotas(stdout: str) -> list[Quota]:
    """Lines `NS/Kind/NAME CONTAINER=CPU:MEMORY ...` (kubectl's jsonpath)."""
    quotas = []
    for line in stdout.splitlines():
        match = _K8S_LINE.match(line.strip())
        if not match:
            continue
        workload = f"{match['ns']}/{match['kind'].lower()}/{match['name']}"
        for container in match["rest"].split():
            name, _, values = container.partition("=")
            cpu, _, memory = values.partition(":")
            quotas.append(Quota(f"{workload}/{name}", cpu, memory))
    return sorted(quotas, key=lambda q: q.target)
