"""Workflows: operations composed into stages, each rolled out in batches with a strategy.

A workflow is declared in YAML and checked twice: `parse_workflow` catches everything the text
alone shows (with the line of each problem), `check_workflow` what needs the operations library
(unknown operations, step parameters that do not fit). `plan_batches` turns a stage's hosts into
the batches the engine runs, spreading failure domains so one bad batch cannot take out a rack.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from fleetops.changes import templating
from fleetops.changes.operations import (
    OPERATION_NAME,
    OperationLibrary,
    ParamName,
    ParamSpec,
    validate_params,
)
from fleetops.changes.specs import (
    Issue,
    Origin,
    Spec,
    SpecError,
    describe_value,
    load_yaml,
    one_of,
    type_name,
    validation_issues,
)
from fleetops.inventory.selectors import SelectorError
from fleetops.inventory.selectors import parse as parse_selector

WORKFLOW_NAME = r"^[a-z][a-z0-9-]{1,63}$"
STAGE_NAME = r"^[a-z][a-z0-9_-]{0,63}$"
# What a step's parameter templates may read; host facts differ per host, so are not checked.
STEP_CONTEXT = frozenset({"params", "host", "change"})
_PERCENT = re.compile(r"^(\d{1,3})%$")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Percent:
    """A share of a stage's hosts, e.g. `25%`."""

    value: int

    def of(self, total: int) -> int:
        """The share of `total`, rounded up."""
        return math.ceil(total * self.value / 100)

    def __str__(self) -> str:
        return f"{self.value}%"


def _count_or_percent(minimum: int) -> Any:
    def parse(value: Any) -> int | Percent:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < minimum:
                raise ValueError(f"must be at least {minimum}, got {value}")
            return value
        if isinstance(value, str) and (match := _PERCENT.match(value.strip())):
            value = Percent(int(match.group(1)))
        if isinstance(value, Percent):
            if not minimum <= value.value <= 100:
                raise ValueError(f"a percentage must be {minimum}% to 100%, got '{value}'")
            return value
        shown = repr(value) if isinstance(value, str) else describe_value(value)
        raise ValueError(f"expected an integer or a percentage like '25%', got {shown}")

    return parse


def _seconds(value: Any) -> float:
    """`30s`, `5m`, `1h30m`, `250ms` or a plain number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str) and _DURATION.match(value.strip()):
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    shown = repr(value) if isinstance(value, str) else describe_value(value)
    raise ValueError(f"expected a duration like '30s', '5m' or '1h', got {shown}")


def _pause(value: Any) -> float | Literal["manual"]:
    return "manual" if value == "manual" else _seconds(value)


def _dump_share(value: int | Percent) -> int | str:
    return str(value) if isinstance(value, Percent) else value


Share = Annotated[int | Percent, PlainSerializer(_dump_share)]
Batch = Annotated[Share, PlainValidator(_count_or_percent(1), json_schema_input_type=int | str)]
Failures = Annotated[Share, PlainValidator(_count_or_percent(0), json_schema_input_type=int | str)]
Pause = Annotated[
    float | Literal["manual"], PlainValidator(_pause, json_schema_input_type=float | str)
]


class Strategy(Spec):
    """How a stage rolls over its hosts."""

    batch: Batch = 1
    concurrency: int | None = Field(default=None, ge=1)  # None: the whole batch at once
    canary: int = Field(default=0, ge=0)
    pause_between: Pause = 0.0  # seconds between batches, or "manual": wait for a person
    max_failures: Failures = 0  # see failure_threshold
    on_failure: Annotated[
        Literal["pause", "abort"], BeforeValidator(one_of("on_failure", ("pause", "abort")))
    ] = "pause"
    on_abort: Annotated[
        Literal["rollback", "stop"], BeforeValidator(one_of("on_abort", ("rollback", "stop")))
    ] = "stop"
    spread_by: Annotated[
        Literal["none", "rack", "cluster", "datacenter"],
        BeforeValidator(one_of("spread_by", ("none", "rack", "cluster", "datacenter"))),
    ] = "none"

    def batch_size(self, host_count: int) -> int:
        """Hosts per batch for a stage of `host_count` hosts: at least 1."""
        size = self.batch.of(host_count) if isinstance(self.batch, Percent) else self.batch
        return max(1, size)


class StepSpec(Spec):
    """One operation run on each host, with its parameters (literal or templated)."""

    operation: str = Field(pattern=OPERATION_NAME)
    version: int | None = Field(default=None, ge=1)  # None: the library's latest
    params: dict[str, Any] = Field(default_factory=dict)


class StageSpec(Spec):
    """Steps run host by host over (part of) the change's targets.

    A `verify` stage holds checks (read-only operations). With `after: each_batch` (its default)
    it rolls with the stage before it: each host of each batch runs the checks right after that
    stage's steps, so a batch is done only when its checks pass, a failed check fails the host
    and counts toward that stage's `max_failures`, and the next batch does not start on a
    deployment that does not work. With `after: stage` it is a stage of its own, with its own
    strategy, once the stage before has finished on every host.
    """

    name: str = Field(pattern=STAGE_NAME)
    type: Annotated[
        Literal["run", "verify"], BeforeValidator(one_of("type", ("run", "verify")))
    ] = "run"
    after: Annotated[
        Literal["each_batch", "stage"], BeforeValidator(one_of("after", ("each_batch", "stage")))
    ] = "each_batch"
    targets: str | None = None  # a selector, AND-ed with the change's targets
    steps: list[StepSpec] = Field(min_length=1)
    strategy: Strategy = Field(default_factory=Strategy)
    when: Annotated[
        Literal["on_success", "always"], BeforeValidator(one_of("when", ("on_success", "always")))
    ] = "on_success"

    @property
    def rolls_with_previous(self) -> bool:
        """True for a verify stage whose checks run inside each batch of the stage before."""
        return self.type == "verify" and self.after == "each_batch"

    @field_validator("targets")
    @classmethod
    def _selector_parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_selector(value)
            except SelectorError as exc:
                raise ValueError(exc.detail) from exc
        return value


class WorkflowSpec(Spec):
    """A named, versioned workflow."""

    name: str = Field(pattern=WORKFLOW_NAME)
    version: int = Field(ge=1)
    description: str = Field(min_length=1)
    params: dict[ParamName, ParamSpec] = Field(default_factory=dict)
    stages: list[StageSpec] = Field(min_length=1)
    # Where the spec came from, so later checks can name lines too; not part of the spec.
    _origin: Origin = PrivateAttr(default_factory=Origin)

    def planned(self, index: int) -> bool:
        """Whether stage `index` has host runs of its own (a verify stage rolling with the
        stage before has none: its checks are that stage's last steps)."""
        return not self.stages[index].rolls_with_previous

    def host_steps(self, index: int) -> list[StepSpec]:
        """What each host of stage `index` runs: its steps, then the checks of the verify
        stages that roll with it."""
        steps = list(self.stages[index].steps)
        for stage in self.stages[index + 1 :]:
            if not stage.rolls_with_previous:
                break
            steps.extend(stage.steps)
        return steps

    def host_stage(self, index: int) -> StageSpec:
        """Stage `index` as its hosts run it: with its verify stages' checks appended."""
        stage = self.stages[index]
        return stage.model_copy(update={"steps": self.host_steps(index)})


# --- parsing and checking -----------------------------------------------------------------------


def parse_workflow(
    text: str, *, source: str = "<workflow>", structure: bool = True
) -> WorkflowSpec:
    """Parse a workflow's YAML; every problem the text alone shows is one SpecError.

    `structure=False` leaves the structure checks to `check_workflow`, which reports them
    together with the library's, so an author sees every problem in one pass.
    """
    data, index = load_yaml(text, source=source)
    if not isinstance(data, dict):
        problem = f"expected a workflow (a mapping), got {type_name(data)}"
        raise SpecError([Issue("", problem, index.line_for(()), source)])
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_issues(exc, index=index, source=source)) from exc
    spec._origin = Origin(index, source)
    if structure and (issues := spec._origin.locate(_structure_issues(spec))):
        raise SpecError(issues)
    return spec


def check_workflow(spec: WorkflowSpec, library: OperationLibrary) -> list[Issue]:
    """Every problem that needs the library: unknown operations, versions, step parameters."""
    issues = _structure_issues(spec)
    for s, stage in enumerate(spec.stages):
        for t, step in enumerate(stage.steps):
            found = _step_issues(step, f"stages[{s}].steps[{t}]", library)
            if not found:
                found = _secret_issues(step, f"stages[{s}].steps[{t}]", library, spec.params)
            issues.extend(found)
            if stage.type == "verify" and not found:
                issues.extend(_check_issues(step, f"stages[{s}].steps[{t}]", library))
    return spec._origin.locate(issues)


def _check_issues(step: StepSpec, path: str, library: OperationLibrary) -> list[Issue]:
    """A verify stage may only look: every step must be a check (`kind: check`)."""
    operation = library.get(step.operation, step.version)
    if operation is None or operation.kind == "check":
        return []
    checks = ", ".join(op.name for op in library.latest() if op.kind == "check")
    message = (
        f"a verify stage runs checks only, and {step.operation!r} is not one (kind: "
        f"{operation.kind}): use a check ({checks}), or make this a run stage"
    )
    return [Issue(f"{path}.operation", message)]


def _structure_issues(spec: WorkflowSpec) -> list[Issue]:
    issues: list[Issue] = []
    first: dict[str, int] = {}
    for s, stage in enumerate(spec.stages):
        issues.extend(_verify_stage_issues(stage, s))
        if stage.name in first:
            message = f"duplicate stage name {stage.name!r} (also stages[{first[stage.name]}])"
            issues.append(Issue(f"stages[{s}].name", message))
        first.setdefault(stage.name, s)
        for t, step in enumerate(stage.steps):
            for path, text in _templates(step.params, f"stages[{s}].steps[{t}].params"):
                issues.extend(_template_issues(text, path, spec.params))
    return issues


def _verify_stage_issues(stage: StageSpec, s: int) -> list[Issue]:
    """Where a verify stage's options contradict each other or its place."""
    # by value, not by what was written: a spec's JSON form spells out every default
    if stage.type == "run":
        if stage.after != "each_batch":
            message = "'after' applies to verify stages only (type: verify)"
            return [Issue(f"stages[{s}].after", message)]
        return []
    if not stage.rolls_with_previous:
        return []
    if s == 0:
        message = (
            "a verify stage that runs after each batch needs a stage before it; "
            "use 'after: stage' to check the targets on their own"
        )
        return [Issue(f"stages[{s}].type", message)]
    issues = []
    defaults = {"strategy": Strategy(), "targets": None, "when": "on_success"}
    for field, default in defaults.items():
        if getattr(stage, field) != default:
            message = (
                f"a verify stage that runs after each batch rolls with the stage before it, "
                f"so it has no {field} of its own: set it on that stage, or use 'after: stage'"
            )
            issues.append(Issue(f"stages[{s}].{field}", message))
    return issues


def _templates(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every template string in a step's parameter values, with its path."""
    if templating.is_template(value):
        yield path, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _templates(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _templates(item, f"{path}.{key}")


def _template_issues(text: str, path: str, declared: dict[str, ParamSpec]) -> list[Issue]:
    try:
        names = templating.variables(text, path=path)
        used = templating.attributes(text, "params", path=path)
    except SpecError as exc:
        return exc.issues
    issues = [
        Issue(path, f"undefined variable {name!r} (a step can use params, host and change)")
        for name in sorted(names - STEP_CONTEXT)
    ]
    known = ", ".join(sorted(declared)) or "none"
    issues.extend(
        Issue(path, f"unknown workflow param {name!r} (declared: {known})")
        for name in sorted(used - set(declared))
    )
    return issues


def _step_issues(step: StepSpec, path: str, library: OperationLibrary) -> list[Issue]:
    operation = library.get(step.operation, step.version)
    if operation is None:
        versions = library.versions(step.operation)
        if versions:
            listed = ", ".join(map(str, versions))
            message = (
                f"operation {step.operation!r} has no version {step.version} (available: {listed})"
            )
            return [Issue(f"{path}.version", message)]
        close = difflib.get_close_matches(step.operation, library.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return [Issue(f"{path}.operation", f"unknown operation {step.operation!r}{hint}")]
    templated = {k for k, v in step.params.items() if any(_templates(v, ""))}
    try:
        validate_params(operation.params, step.params, path=f"{path}.params", unchecked=templated)
    except SpecError as exc:
        return exc.issues
    return []


def _secret_issues(
    step: StepSpec, path: str, library: OperationLibrary, declared: dict[str, ParamSpec]
) -> list[Issue]:
    """A secret workflow param may only reach an operation input declared secret (never put in
    command text): an approver must see every command as it will run, not `***` in it."""
    operation = library.get(step.operation, step.version)
    assert operation is not None  # _step_issues found it
    secret = {name for name, param in declared.items() if param.secret}
    issues = []
    for key, value in step.params.items():
        target = operation.params.get(key)
        if target is not None and target.secret:
            continue
        for where, text in _templates(value, f"{path}.params.{key}"):
            for name in sorted(templating.attributes(text, "params", path=where) & secret):
                issues.append(
                    Issue(
                        where,
                        f"secret param {name!r} would go into {step.operation}'s {key!r}, which "
                        "is not a secret input: an approver would approve a command they cannot "
                        "see; pass it to an operation that takes it on stdin or in an action",
                    )
                )
    return issues


# --- batches ------------------------------------------------------------------------------------


class PlanHost(NamedTuple):
    """A host as the planner sees it: a name and its failure domains."""

    hostname: str
    rack: str | None = None
    cluster: str | None = None
    datacenter: str | None = None


def failure_threshold(max_failures: int | Percent, host_count: int) -> int:
    """How many failed hosts stop a stage (`on_failure`): reaching this number does.

    A percentage of the stage's hosts rounds down, to stop sooner rather than later; the result
    is at least 1, so `0` and `1` both mean "the first failure".
    """
    if isinstance(max_failures, Percent):
        return max(1, host_count * max_failures.value // 100)
    return max(1, max_failures)


def plan_batches(hosts: Sequence[PlanHost], strategy: Strategy) -> list[list[str]]:
    """Split a stage's hosts into batches: a canary batch first, then batches of `batch` size.

    The plan is deterministic (hosts are ordered by natural hostname order, never by input
    order). After the canary batch there are k = ceil(remaining / batch size) batches whose sizes
    differ by at most one. With `spread_by`, hosts are grouped by domain (largest domain first,
    then by name; hosts without the domain form one group), laid end to end, and dealt out: the
    i-th host goes to batch i mod k. A domain with at most k hosts therefore never has two hosts
    in one batch; a larger one puts floor or ceil(size / k) hosts in each batch, which is as few
    as possible. Canaries are taken one per domain in that same order before dealing.
    """
    names = [host.hostname for host in hosts]
    if len(set(names)) != len(names):
        raise ValueError("each host may appear only once in a plan")
    ordered = sorted(hosts, key=lambda host: _natural(host.hostname))
    size = strategy.batch_size(len(ordered))
    canary_count = min(strategy.canary, len(ordered))
    if strategy.spread_by == "none":
        canary, rest = ordered[:canary_count], ordered[canary_count:]
        count = math.ceil(len(rest) / size)
        batches = [rest[a:b] for a, b in _bounds(len(rest), count)]
    else:
        domains = _domains(ordered, strategy.spread_by)
        canary = _round_robin(domains)[:canary_count]
        taken = {host.hostname for host in canary}
        domains = _largest_first((d, [h for h in g if h.hostname not in taken]) for d, g in domains)
        dealt = [host for _, group in domains for host in group]
        count = math.ceil(len(dealt) / size)
        batches = [dealt[b::count] for b in range(count)]
    plan = [canary, *batches] if canary else batches
    return [sorted((h.hostname for h in batch), key=_natural) for batch in plan]


def _natural(name: str) -> tuple[list[int | str], str]:
    """`dn2` before `dn10`; the name itself breaks ties such as `dn01` and `dn1`."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)], name


def _bounds(total: int, count: int) -> list[tuple[int, int]]:
    """Cut `total` items into `count` runs, the first `total % count` one longer."""
    if not count:
        return []
    small, extra = divmod(total, count)
    ends = [(i + 1) * small + min(i + 1, extra) for i in range(count)]
    return list(zip([0, *ends[:-1]], ends, strict=True))


Domains = list[tuple[str, list[PlanHost]]]


def _domains(hosts: list[PlanHost], key: str) -> Domains:
    """Hosts by failure domain; hosts without one share the domain ''."""
    groups: dict[str, list[PlanHost]] = {}
    for host in hosts:
        groups.setdefault(getattr(host, key) or "", []).append(host)
    return _largest_first(groups.items())


def _largest_first(domains: Iterable[tuple[str, list[PlanHost]]]) -> Domains:
    return sorted(((d, g) for d, g in domains if g), key=lambda dg: (-len(dg[1]), _natural(dg[0])))


def _round_robin(domains: Domains) -> list[PlanHost]:
    """The first host of each domain, then the second of each, and so on."""
    out: list[PlanHost] = []
    for depth in range(max((len(g) for _, g in domains), default=0)):
        out.extend(g[depth] for _, g in domains if depth < len(g))
    return out
