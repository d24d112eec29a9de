"""The demo's scheduler: per-target quotas that the `scheduler_quotas` and `scheduler_requests`
operations read and change, as a YARN ResourceManager or a Kubernetes API server would.

The simulated executor hands it every command that starts with the operations' marker line
(`# fleetops-scheduler requests|rollback|quotas KIND [change=N]`). `quotas` prints what the real
commands print; `requests` reads the rendered `kubectl set resources` / `yarn schedulerconf
-update` lines themselves (so what the approver saw is what changes here), keeping each
target's values from before a change's first run; `rollback` puts those back.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import shlex
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fleetops.analytics.resources.scheduler import Kind, Site, target_of

MARK = "# fleetops-scheduler "
_HEADER = re.compile(
    r"^# fleetops-scheduler (requests|rollback|quotas) (kubernetes|yarn)(?: change=(\d+))?"
)


@dataclass
class Quota:
    """A target's current values as the scheduler writes them ("" when unset)."""

    cpu: str = ""
    memory: str = ""


@dataclass
class SimScheduler:
    """Quotas by target, and what each change found before it set them."""

    kind: Kind = "yarn"
    quotas: dict[str, Quota] = field(default_factory=dict)
    previous: dict[str, dict[str, Quota]] = field(default_factory=lambda: defaultdict(dict))

    def answer(self, command: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of one of the operations' scripts."""
        header = _HEADER.match(command.lstrip())
        if header is None or header[2] != self.kind:
            return 2, "", f"the simulated scheduler is {self.kind}\n"
        if header[1] == "quotas":
            return 0, self.printed(), ""
        change = header[3] or "0"
        if header[1] == "rollback":
            for target, quota in self.previous.pop(change, {}).items():
                self.quotas[target] = Quota(quota.cpu, quota.memory)
            return 0, "", ""
        for line in command.splitlines():
            found = self._update(line)
            if found is not None:
                target, cpu, memory = found
                if target not in self.quotas:
                    return 1, "", f"{target}: not found\n"
                now = self.quotas[target]
                self.previous[change].setdefault(target, Quota(now.cpu, now.memory))
                self.quotas[target] = Quota(cpu or now.cpu, memory or now.memory)
        return 0, "", ""

    def _update(self, line: str) -> tuple[str, str, str] | None:
        """A rendered update line as (target, cpu, memory); None for any other line."""
        if not line.startswith(("kubectl ", "yarn schedulerconf ")):
            return None
        words = shlex.split(line.removesuffix("|| exit 1"))
        values: dict[str, str] = {}
        if words[:1] == ["kubectl"] and words[3:5] == ["set", "resources"]:
            target = f"{words[2]}/{words[5]}/{words[7]}"
            values = dict(p.split("=", 1) for p in words[8].removeprefix("--requests=").split(","))
            return target, values.get("cpu", ""), values.get("memory", "")
        if words[:3] == ["yarn", "schedulerconf", "-update"]:
            target, _, pairs = words[3].partition(":")
            values = dict(p.split("=", 1) for p in pairs.split(","))
            names = ("maximum-allocation-vcores", "maximum-allocation-mb")
            return target, values.get(names[0], ""), values.get(names[1], "")
        return None

    def printed(self) -> str:
        """What `scheduler_quotas` prints for these quotas."""
        if self.kind == "yarn":
            return "".join(
                f"{t} maximum-allocation-vcores={q.cpu}\n{t} maximum-allocation-mb={q.memory}\n"
                for t, q in sorted(self.quotas.items())
            )
        workloads: dict[str, list[str]] = defaultdict(list)
        for target, q in sorted(self.quotas.items()):
            ns, kind, name, container = target.split("/")
            workloads[f"{ns}/{kind.capitalize()}/{name}"].append(f"{container}={q.cpu}:{q.memory}")
        return "".join(f"{w} {' '.join(c)}\n" for w, c in workloads.items())


def is_scheduler(command: str) -> bool:
    return command.lstrip().startswith(MARK)


def from_trace(directory: Path, site: Site, *, gb_per_memory_unit: float) -> SimScheduler:
    """A scheduler holding a target for each task-type group of a trace (named as `site` names
    them), each allowing the largest request of its tasks: vcores (or millicores) and MB."""
    largest: dict[str, tuple[float, float]] = {}
    for path in sorted(directory.glob("batch_tasks*.csv*")):
        opened = gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
        with opened as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            for row in csv.reader(text):
                task_type = re.match(r"[A-Za-z]*", row[2])
                group = f"{task_type[0] if task_type else ''}|{float(row[4])}|{float(row[5])}"
                target = target_of(site.template, site.kind, "task", group)
                if target:
                    cpu, mem = largest.get(target, (0.0, 0.0))
                    largest[target] = (max(cpu, float(row[4]) / 100), max(mem, float(row[5])))
    scheduler = SimScheduler(kind=site.kind)
    for target, (cpu, mem) in largest.items():
        mb = max(1, round(mem * gb_per_memory_unit * 1024))
        if site.kind == "yarn":
            scheduler.quotas[target] = Quota(str(max(1, round(cpu + 0.4999))), str(mb))
        else:
            scheduler.quotas[target] = Quota(f"{max(1, round(cpu * 1000))}m", f"{mb}Mi")
    return scheduler
