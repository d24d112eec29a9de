"""Operations: the atomic, reusable steps every change is made of, declared in YAML.

An operation says what to run (a shell command template or a built-in action), how to tell the
work is already done (`check`), how to confirm it worked (`verify`) and how to undo it
(`rollback`). The engine depends on these declarations to resume after a crash and to roll back,
so they are validated strictly when the library loads, not when a change first uses them.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fleetops.changes import templating
from fleetops.changes.specs import Issue as Issue  # re-exported: callers catch it from here
from fleetops.changes.specs import (
    Loc,
    Origin,
    Spec,
    describe_value,
    format_path,
    load_yaml,
    one_of,
    type_name,
    validation_issues,
)
from fleetops.changes.specs import SpecError as SpecError

BUILTIN_DIR = Path(__file__).with_name("library")
OPERATION_NAME = r"^[a-z][a-z0-9_]{1,63}$"
LABEL_KEY = r"^[A-Za-z0-9._/-]{1,63}$"
PARAM_TYPES = ("string", "integer", "number", "boolean", "list", "object")
RISKS = ("read_only", "low", "medium", "high")
KINDS = ("action", "check")
PHASES = ("run", "check", "verify", "rollback")
# What every template sees besides the operation's params; a param may not shadow them.
CONTEXT_NAMES = frozenset({"host", "change", "timeout", "params"})
# Built-in actions the engine implements: (required params, optional params).
ACTIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "wait": (frozenset({"seconds"}), frozenset()),
    "file_put": (frozenset({"path", "content"}), frozenset({"mode"})),
    "reboot": (frozenset(), frozenset({"poll_interval", "command"})),
    "ansible_playbook": (frozenset({"playbook"}), frozenset({"extra_vars", "tags"})),
    "inspect_hardware": (
        frozenset(),
        frozenset(
            {"probes", "directory", "quick", "change_id", "record_only", "device", "iperf_server"}
        ),
    ),
}

# Actions that start a process on the fleetops server (which holds the fleet's key and the
# database): an operation approved without review (read_only or low risk) may not use them.
SERVER_ACTIONS = frozenset({"ansible_playbook"})
UNREVIEWED_RISKS = ("read_only", "low")

ParamType = Literal["string", "integer", "number", "boolean", "list", "object"]
Risk = Literal["read_only", "low", "medium", "high"]
ActionName = Literal["wait", "file_put", "reboot", "ansible_playbook", "inspect_hardware"]


def _not_reserved(name: str) -> str:
    if name in CONTEXT_NAMES:
        raise ValueError(f"{name!r} is reserved for the template context; rename the parameter")
    return name


ParamName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,63}$"), AfterValidator(_not_reserved)]


# --- parameters ---------------------------------------------------------------------------------


class ParamSpec(Spec):
    """One declared parameter: its type and the constraints a given value must meet."""

    type: Annotated[ParamType, BeforeValidator(one_of("type", PARAM_TYPES))]
    required: bool = False
    description: str = ""
    secret: bool = False  # shown as "***" in the audit log, API responses and messages
    enum: list[Any] | None = Field(default=None, min_length=1)
    pattern: str | None = None  # the whole string value must match (re.fullmatch)
    default: Any = None  # declared last: its validator reads the fields above

    @field_validator("enum")
    @classmethod
    def _enum_matches_type(cls, value: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        kind = info.data.get("type")
        for item in value or ():
            if kind and (problem := _type_problem(kind, item, secret=False)):
                raise ValueError(f"enum values must be of the param's type: {problem}")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("type") != "string":
            raise ValueError("only a string param can have a pattern")
        try:
            return None if value is None else re.compile(value).pattern
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc

    @field_validator("default")
    @classmethod
    def _default_is_valid(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:  # null: no default (as a dumped spec writes it)
            return None
        if info.data.get("required"):
            raise ValueError("a required param cannot have a default")
        problem = _value_problem(
            info.data.get("type"), info.data.get("enum"), info.data.get("pattern"), value, False
        )
        if problem:
            raise ValueError(problem)
        return value

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable for this param, or None."""
        return _value_problem(self.type, self.enum, self.pattern, value, self.secret)


def _type_problem(kind: str, value: Any, *, secret: bool) -> str | None:
    actual = type_name(value)
    fits = actual == kind or (kind == "number" and actual == "integer")
    return None if fits else f"expected {kind}, got {describe_value(value, secret=secret)}"


def _value_problem(
    kind: str | None, enum: list[Any] | None, pattern: str | None, value: Any, secret: bool
) -> str | None:
    if kind is None:  # the type itself was invalid and is reported already
        return None
    if problem := _type_problem(kind, value, secret=secret):
        return problem
    if enum is not None and value not in enum:
        shown = "" if secret else f", got {value!r}"
        return f"expected one of {', '.join(map(str, enum))}{shown}"
    if pattern is not None and not re.fullmatch(pattern, value):
        shown = "value" if secret else repr(value)
        return f"{shown} does not match pattern {pattern!r}"
    return None


def validate_params(
    spec_params: Mapping[str, ParamSpec],
    given: Mapping[str, Any],
    *,
    path: str = "params",
    unchecked: Collection[str] = (),
) -> dict[str, Any]:
    """Check given values against declared params and apply defaults; never coerce.

    Names in `unchecked` (templated values, known only per host) count as given but are not
    checked. Optional params without a default are set to None so templates can test them.
    """
    issues: list[Issue] = []
    for name in given:
        if name not in spec_params:
            issues.append(Issue(f"{path}.{name}", _unknown(name, spec_params)))
    values: dict[str, Any] = {}
    for name, spec in spec_params.items():
        if name in given:
            values[name] = given[name]
            if name not in unchecked and (problem := spec.problem(given[name])):
                issues.append(Issue(f"{path}.{name}", problem))
        elif spec.required:
            issues.append(Issue(f"{path}.{name}", "required"))
        else:
            values[name] = copy.deepcopy(spec.default)
    if issues:
        raise SpecError(issues)
    return values


def _unknown(name: str, known: Collection[str]) -> str:
    if not known:
        return "unknown parameter (this takes no parameters)"
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown parameter ({hint}expected one of {', '.join(sorted(known))})"


def redact(spec_params: Mapping[str, ParamSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """Copy values with every secret one replaced by "***", for audit records and responses."""
    return {
        name: "***" if name in spec_params and spec_params[name].secret and value is not None
        else value
        for name, value in values.items()
    }  # fmt: skip


# --- what a phase runs --------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionCall:
    """A built-in action to run, with its (still unrendered) parameter values."""

    action: ActionName
    params: Mapping[str, Any]


class Invocation(Spec):
    """A command template, a built-in action, or a choice between those by a host label.

    YAML writes a command as a plain string, an action as `{action: reboot, params: {...}}` and
    a choice as `{by_label: scheduler, cases: {kubernetes: "...", default: "..."}}`.
    """

    command: str | None = None
    action: Annotated[ActionName | None, BeforeValidator(one_of("action", tuple(ACTIONS)))] = None
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    by_label: str | None = Field(default=None, pattern=LABEL_KEY)
    cases: dict[str, Invocation] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _command_shorthand(cls, value: Any) -> Any:
        return {"command": value} if isinstance(value, str) else value

    @field_validator("params")
    @classmethod
    def _action_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "action" not in info.data:  # the action itself is invalid and reported
            return value
        if (action := info.data["action"]) is None:
            if value:
                raise ValueError("only an action takes params")
            return value
        required, optional = ACTIONS[action]
        if unknown := sorted(set(value) - required - optional):
            known = ", ".join(sorted(required | optional)) or "none"
            raise ValueError(f"unknown {action} params: {', '.join(unknown)} (known: {known})")
        if missing := sorted(required - set(value)):
            raise ValueError(f"{action} requires params: {', '.join(missing)}")
        return value

    @field_validator("cases")
    @classmethod
    def _flat_cases(cls, value: dict[str, Invocation]) -> dict[str, Invocation]:
        if nested := [label for label, case in value.items() if case.by_label is not None]:
            raise ValueError(f"a case cannot choose by label again: {', '.join(nested)}")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> Invocation:
        forms = [f for f in (self.command, self.action, self.by_label) if f is not None]
        if len(forms) != 1:
            raise ValueError(
                "expected a command string, {action: ..., params: ...}"
                " or {by_label: ..., cases: ...}"
            )
        if self.by_label is not None and not self.cases:
            raise ValueError("by_label needs cases")
        if self.by_label is None and self.cases:
            raise ValueError("cases need by_label")
        return self

    def resolve(self, labels: Mapping[str, str], *, path: str = "run") -> str | ActionCall:
        """What to run on a host with these labels: a command template or an action.

        A host whose label matches no case, with no `default` case, is a SpecError.
        """
        if self.by_label is None:
            return self._call()
        value = labels.get(self.by_label)
        case = self.cases.get(value) if value is not None else None
        if case is None and (case := self.cases.get("default")) is None:
            found = "no such label" if value is None else f"{self.by_label}={value!r}"
            known = ", ".join(sorted(self.cases))
            message = f"no case for the host ({found}) and no default; cases: {known}"
            raise SpecError([Issue(f"{path}.cases", message)])
        return case._call()

    def _call(self) -> str | ActionCall:
        if self.command is not None:
            return self.command
        assert self.action is not None  # a case is a command or an action: _flat_cases
        return ActionCall(self.action, self.params)

    def templates(self, loc: Loc) -> Iterator[tuple[Loc, str]]:
        """Every template text this invocation holds, with its path."""
        if self.command is not None:
            yield loc, self.command
        for name, value in self.params.items():
            if isinstance(value, str):
                yield (*loc, "params", name), value
        for label, case in self.cases.items():
            yield from case.templates((*loc, "cases", label))


class RetrySpec(Spec):
    """How often a failed phase is retried, waiting `backoff` seconds doubled each time."""

    count: int = Field(default=0, ge=0, le=100)
    backoff: float = Field(default=0.0, ge=0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return self.backoff * 2.0 ** (attempt - 1)


class OperationSpec(Spec):
    """One operation version, as declared in a library file."""

    name: str = Field(pattern=OPERATION_NAME)
    version: int = Field(ge=1)
    description: str = Field(min_length=1)
    risk: Annotated[Risk, BeforeValidator(one_of("risk", RISKS))]
    # `check`: it only looks at the host (a verify stage holds nothing else). Risk is separate:
    # a check that runs a command it is given needs the review of any command.
    kind: Annotated[Literal["action", "check"], BeforeValidator(one_of("kind", KINDS))] = "action"
    idempotent: bool = False  # safe to run again after a crash mid-run
    timeout: float = Field(default=300.0, gt=0)  # seconds per phase
    retries: RetrySpec = Field(default_factory=RetrySpec)
    params: dict[ParamName, ParamSpec] = Field(default_factory=dict)
    run: Invocation
    stdin: str | None = None  # a template fed to the command's stdin, rendered without quoting
    check: Invocation | None = None  # exit 0: the desired state is already there
    verify: Invocation | None = None
    rollback: Invocation | None = None

    def phases(self) -> Iterator[tuple[str, Invocation]]:
        """The declared phases in execution order."""
        for phase in PHASES:
            if (invocation := getattr(self, phase)) is not None:
                yield phase, invocation


def operation_issues(spec: OperationSpec, prefix: Loc = ()) -> list[Issue]:
    """Template problems a model cannot see alone: syntax and names no param declares."""
    known = set(spec.params) | (CONTEXT_NAMES - {"params"})
    issues: list[Issue] = []
    found: list[tuple[Loc, str]] = [
        item for phase, inv in spec.phases() for item in inv.templates((*prefix, phase))
    ]
    if spec.risk in UNREVIEWED_RISKS:
        for phase, inv in spec.phases():
            issues.extend(
                Issue(format_path((*prefix, phase)), f"a {spec.risk}-risk operation runs "
                      f"{action} on the server unreviewed: declare risk medium or higher")
                for action in sorted(_actions(inv) & SERVER_ACTIONS)
            )  # fmt: skip
    if spec.stdin is not None:
        found.append(((*prefix, "stdin"), spec.stdin))
        if spec.run.command is None and spec.run.by_label is None:
            issues.append(Issue(format_path((*prefix, "stdin")), "only a command takes stdin"))
    for loc, text in found:
        path = format_path(loc)
        try:
            unknown = templating.variables(text, path=path) - known
        except SpecError as exc:
            issues.extend(exc.issues)
            continue
        issues.extend(
            Issue(path, f"undefined variable {name!r} ({_declared(spec.params)})")
            for name in sorted(unknown)
        )
        if _is_command(loc, prefix) and spec.risk in UNREVIEWED_RISKS and templating.raw_uses(text):
            issues.append(
                Issue(path, f"a {spec.risk}-risk operation takes command text from a parameter "
                      "(|raw), so changes would run it unreviewed: declare risk medium or higher")
            )  # fmt: skip
        if _is_command(loc, prefix):
            issues.extend(
                Issue(
                    path,
                    f"secret param {name!r} in command text: an approver would see "
                    "*** instead of the command; pass it on stdin or to an action",
                )
                for name in sorted(templating.variables(text, path=path))
                if name in spec.params and spec.params[name].secret
            )
    return issues


def _actions(inv: Invocation) -> set[str]:
    found: set[str] = {inv.action} if inv.action is not None else set()
    for case in inv.cases.values():
        found |= _actions(case)
    return found


def _is_command(loc: Loc, prefix: Loc) -> bool:
    """Whether a template's path is command text (not stdin, not an action's parameter)."""
    rest = loc[len(prefix) :]
    return rest[0] in PHASES and "params" not in rest


def _declared(params: Collection[str]) -> str:
    return f"declared params: {', '.join(sorted(params))}" if params else "no params declared"


# --- the library --------------------------------------------------------------------------------


class OperationLibrary:
    """Every known operation version; `get` without a version gives the latest."""

    def __init__(self, entries: Iterable[tuple[OperationSpec, str]] = ()) -> None:
        self._specs: dict[str, dict[int, tuple[OperationSpec, str]]] = {}
        for spec, source in entries:  # later entries override earlier ones
            self._specs.setdefault(spec.name, {})[spec.version] = (spec, source)

    def get(self, name: str, version: int | None = None) -> OperationSpec | None:
        """One version of an operation, the latest when `version` is None."""
        versions = self._specs.get(name, {})
        if version is None and versions:
            version = max(versions)
        entry = versions.get(version) if version is not None else None
        return entry[0] if entry else None

    def latest(self) -> list[OperationSpec]:
        """The latest version of every operation, by name."""
        return [spec for name in self.names() if (spec := self.get(name)) is not None]

    def source(self, name: str, version: int) -> str | None:
        """The file an operation version was loaded from, for messages and audit records."""
        entry = self._specs.get(name, {}).get(version)
        return entry[1] if entry else None

    def versions(self, name: str) -> list[int]:
        return sorted(self._specs.get(name, {}))

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


def parse_operations(text: str, *, source: str = "<operations>") -> list[OperationSpec]:
    """Parse a YAML file holding one operation (a mapping) or several (a list)."""
    data, index = load_yaml(text, source=source)
    if isinstance(data, dict):
        items: list[tuple[Loc, Any]] = [((), data)]
    elif isinstance(data, list) and data:
        items = [((i,), item) for i, item in enumerate(data)]
    else:
        problem = f"expected an operation or a list of operations, got {type_name(data)}"
        raise SpecError([Issue("", problem, index.line_for(()), source)])
    specs, issues = [], []
    for loc, item in items:
        try:
            spec = OperationSpec.model_validate(item)
        except ValidationError as exc:
            issues.extend(validation_issues(exc, index=index, source=source, prefix=loc))
            continue
        specs.append(spec)
        issues.extend(Origin(index, source).locate(operation_issues(spec, loc)))
    if issues:
        raise SpecError(issues)
    return specs


def load_library(*dirs: Path) -> OperationLibrary:
    """Load the built-in operations, then each directory's; later ones override by version."""
    entries: list[tuple[OperationSpec, str]] = []
    issues: list[Issue] = []
    for directory in (BUILTIN_DIR, *dirs):
        if not directory.is_dir():
            issues.append(Issue("", "not a directory", None, str(directory)))
            continue
        first: dict[tuple[str, int], str] = {}
        for file in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                specs = parse_operations(file.read_text(encoding="utf-8"), source=str(file))
            except SpecError as exc:
                issues.extend(exc.issues)
                continue
            except (OSError, UnicodeDecodeError) as exc:
                issues.append(Issue("", f"cannot read: {exc}", None, str(file)))
                continue
            for spec in specs:
                key = (spec.name, spec.version)
                if key in first:
                    also = f"operation {spec.name!r} version {spec.version} is also in {first[key]}"
                    issues.append(Issue("name", also, None, str(file)))
                first.setdefault(key, str(file))
                entries.append((spec, str(file)))
    if issues:
        raise SpecError(issues)
    return OperationLibrary(entries)
