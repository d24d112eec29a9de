"""fleetops' own formats: the YAML document and the hosts CSV.

Every other format converges on the same `InventoryDoc`, so the helpers they share live here too:
`Issues` (collect every problem, then reject the file as a whole), the line-aware YAML loader and
the CSV row reader.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from fleetops.errors import AppError
from fleetops.inventory.document import (
    ClusterDoc,
    DatacenterDoc,
    HardwareModelDoc,
    HostDoc,
    ImportFailed,
    ImportIssue,
    InventoryDoc,
    LatencyDoc,
    LinkDoc,
    RackDoc,
    RegionDoc,
    SwitchDoc,
)
from fleetops.kit.yamlerrors import error_line, error_problem

try:  # libyaml parses several times faster; our constructors stay the safe ones
    from yaml import CSafeDumper as SafeDumper
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeDumper  # type: ignore[assignment]
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

M = TypeVar("M", bound=BaseModel)

HOST_COLUMNS = (
    "hostname", "address", "ssh_port", "ssh_user", "model", "rack", "cluster", "state", "labels",
    "groups",
)  # fmt: skip

# section -> (item model, what to call one item in messages, the field that names it)
_SECTIONS: dict[str, tuple[type[BaseModel], str, str | None]] = {
    "regions": (RegionDoc, "region", "name"),
    "datacenters": (DatacenterDoc, "datacenter", "name"),
    "latencies": (LatencyDoc, "latency", None),
    "clusters": (ClusterDoc, "cluster", "name"),
    "racks": (RackDoc, "rack", "name"),
    "hardware_models": (HardwareModelDoc, "hardware model", "name"),
    "switches": (SwitchDoc, "switch", "name"),
    "hosts": (HostDoc, "host", "hostname"),
    "links": (LinkDoc, "link", None),
}
# Free-form string maps: YAML turns `gpus: 4` into an int, which the user meant as text.
_STRING_MAPS = ("labels", "failure_domains")


class NotExportable(AppError):
    """The document holds something the chosen export format cannot express without loss."""

    status_code = 409


class Issues:
    """Collects problems so a bad file is rejected once, with all of them."""

    def __init__(self) -> None:
        self.items: list[ImportIssue] = []

    def add(self, line: int | None, message: str) -> None:
        self.items.append(ImportIssue(line=line, message=message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ImportFailed(sorted(self.items, key=lambda i: (i.line is None, i.line or 0)))

    def build(
        self,
        model: type[M],
        data: Mapping[str, Any],
        *,
        what: str,
        line: int | None,
        field_lines: Mapping[Any, int] | None = None,
        field_names: Mapping[str, str] | None = None,
    ) -> M | None:
        """Validate one item, turning pydantic errors into issues on the offending field's line.

        `field_names` renames fields in messages to what the file calls them (`primary_ip4`).
        """
        if "line" in data:  # `line` is our bookkeeping field, never the user's
            self.add((field_lines or {}).get("line", line), f"{what}: unknown field 'line'")
            return None
        try:
            return model.model_validate({**data, "line": line})
        except ValidationError as exc:
            for err in exc.errors():
                field = err["loc"][0] if err["loc"] else None
                name = (field_names or {}).get(str(field), str(field))
                self.add((field_lines or {}).get(field, line), f"{what}: {_describe(err, name)}")
            return None

    def check_unique(self, kind: str, names: list[tuple[str, int | None]]) -> None:
        """Report every repeat of a name on its own line, pointing back at the first."""
        first: dict[str, int | None] = {}
        for name, line in names:
            if name in first:
                self.add(line, f"duplicate {kind} {name!r} (first defined on line {first[name]})")
            else:
                first[name] = line


def _describe(err: ErrorDetails, field: str) -> str:
    loc = ".".join([field, *(str(part) for part in err["loc"][1:])])
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        return f"unknown field {loc!r}"
    if err["type"] == "missing":
        return f"{loc}: required"
    if err["type"] == "string_pattern_mismatch":
        return f"{loc}: invalid value {value!r}"
    message = err["msg"].removeprefix("Value error, ")
    if isinstance(value, str | int | float) and repr(value) not in message:
        message += f" (got {value!r})"
    return f"{loc}: {message}"


def item_label(kind: str, name: object) -> str:
    """Name an item in messages: `host 'dn-001'`, or just `host` when it has no usable name."""
    return f"{kind} {name!r}" if isinstance(name, str) and name else kind


def stringify(value: object) -> str:
    """Render a YAML/Ansible scalar the way a user would have typed it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# --- YAML with line numbers -------------------------------------------------------------------


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers the 1-based line of itself and of each key."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class LineList(list[Any]):
    """A YAML sequence that remembers the 1-based line of each item."""

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []


class _LineLoader(_SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[int, str]] = []


def _construct_map(loader: _SafeLoader, node: yaml.MappingNode) -> Iterator[LineMap]:
    duplicates = cast(_LineLoader, loader).duplicate_keys
    data = LineMap(node.start_mark.line + 1)
    yield data
    seen: set[str] = set()
    for key_node, _ in node.value:  # before merge keys are flattened in: those may repeat
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if key_node.value in seen:
                duplicates.append((key_node.start_mark.line + 1, key_node.value))
            seen.add(key_node.value)
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:
        data.key_lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1


def _construct_seq(loader: _SafeLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    yield data
    data.extend(loader.construct_sequence(node))
    data.item_lines.extend(item.start_mark.line + 1 for item in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_yaml(text: str, issues: Issues) -> Any:
    """Safely load YAML into LineMap/LineList; a syntax error rejects the file at once."""
    try:
        loader = _LineLoader(text)  # the reader rejects control characters right here
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        issue = ImportIssue(line=error_line(exc, text), message=error_problem(exc))
        raise ImportFailed([issue]) from exc
    if problem := _alias_problem(data, budget=10 * len(text) + 10_000):
        raise ImportFailed([ImportIssue(line=None, message=f"invalid YAML: {problem}")])
    for line, key in loader.duplicate_keys:
        issues.add(line, f"duplicate key {key!r}")
    return data


def _alias_problem(data: Any, *, budget: int) -> str | None:
    """Refuse aliases that contain themselves or expand far beyond the text (a 'YAML bomb')."""
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
        elif isinstance(node, dict | list):
            if id(node) in on_path:
                return "an alias refers to a node that contains it"
            if (budget := budget - len(node)) < 0:
                return "aliases expand to far more data than the file holds"
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend(
                (child, False) for child in (node.values() if isinstance(node, dict) else node)
            )
    return None


def dump_yaml(data: object) -> str:
    """Dump plain data as block YAML, keeping the order the document gives."""
    return yaml.dump(data, Dumper=SafeDumper, sort_keys=False, allow_unicode=True)


# --- fleetops YAML ----------------------------------------------------------------------------


def parse_yaml(text: str) -> InventoryDoc:
    """Parse a fleetops YAML document: a mapping of section name to a list of items."""
    issues = Issues()
    data = load_yaml(text, issues)
    if data is None:
        issues.raise_if_any()
        return InventoryDoc()
    if not isinstance(data, LineMap):
        issues.add(1, f"expected a mapping of sections ({', '.join(_SECTIONS)})")
        issues.raise_if_any()
    sections: dict[str, list[BaseModel]] = {}
    for key, value in data.items():
        line = data.key_lines.get(key)
        if key not in _SECTIONS:
            issues.add(line, f"unknown section {key!r}; expected one of {', '.join(_SECTIONS)}")
        elif isinstance(value, LineList):
            sections[key] = _parse_section(key, value, issues)
        elif value is not None:
            issues.add(line, f"{key}: expected a list of items")
    issues.raise_if_any()
    return InventoryDoc.model_validate(sections)


def _parse_section(section: str, items: LineList, issues: Issues) -> list[BaseModel]:
    model, kind, name_field = _SECTIONS[section]
    parsed: list[BaseModel] = []
    names: list[tuple[str, int | None]] = []
    for raw, line in zip(items, items.item_lines, strict=True):
        if not isinstance(raw, LineMap):
            issues.add(line, f"{section}: expected a mapping for each {kind}")
            continue
        name = raw.get(name_field) if name_field else None
        if isinstance(name, str):
            names.append((name, line))
        data = {k: _stringify_map(v) if k in _STRING_MAPS else v for k, v in raw.items()}
        item = issues.build(
            model, data, what=item_label(kind, name), line=line, field_lines=raw.key_lines
        )
        if item is not None:
            parsed.append(item)
    issues.check_unique(kind, names)
    return parsed


def _stringify_map(value: object) -> object:
    if not isinstance(value, dict):
        return value
    scalar = (str, int, float, bool)
    return {k: stringify(v) if isinstance(v, scalar) else v for k, v in value.items()}


def render_yaml(doc: InventoryDoc) -> str:
    """Render the document as fleetops YAML, leaving out empty sections and default values."""
    data: dict[str, list[dict[str, Any]]] = {}
    for section in _SECTIONS:
        if items := getattr(doc, section):
            data[section] = [item.model_dump(exclude_defaults=True) for item in items]
    return dump_yaml(data)


# --- CSV --------------------------------------------------------------------------------------


def read_rows(text: str, issues: Issues) -> list[tuple[int, list[str]]]:
    """Read CSV rows with the line each starts on (quoted fields may span lines); skip blanks."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        issues.add(reader.line_num or 1, f"invalid CSV: {exc}")
        issues.raise_if_any()
    return rows


def split_header(
    rows: list[tuple[int, list[str]]],
    *,
    required: str,
    normalize: Callable[[str], str],
    issues: Issues,
) -> tuple[int, list[str]]:
    """Take the header row off `rows`, normalising its names; report missing or repeated ones."""
    if not rows:
        issues.add(1, f"missing header row; required column: {required}")
        issues.raise_if_any()
    line, raw = rows.pop(0)
    header = [normalize(column) for column in raw]
    for column in sorted({c for c in header if header.count(c) > 1}):
        issues.add(line, f"duplicate column {column!r}")
    if required not in header:
        issues.add(line, f"missing required column {required!r}")
    return line, header


def cells(header: list[str], row: list[str], line: int, issues: Issues) -> dict[str, str] | None:
    """Pair a row with the header, keeping non-empty cells; a ragged row is an issue."""
    if len(row) != len(header):
        issues.add(line, f"expected {len(header)} columns, got {len(row)}")
        return None
    return {column: cell.strip() for column, cell in zip(header, row, strict=True) if cell.strip()}


def parse_csv(text: str) -> InventoryDoc:
    """Parse the hosts CSV; empty cells take the defaults."""
    issues = Issues()
    rows = read_rows(text, issues)
    header_line, header = split_header(
        rows, required="hostname", normalize=lambda c: c.strip().lower(), issues=issues
    )
    unknown = [column for column in header if column not in HOST_COLUMNS]
    if unknown:
        listed = ", ".join(repr(c) for c in unknown)
        issues.add(header_line, f"unknown column(s) {listed}; expected {', '.join(HOST_COLUMNS)}")
    issues.raise_if_any()
    hosts: list[HostDoc] = []
    names: list[tuple[str, int | None]] = []
    for line, row in rows:
        data = cells(header, row, line, issues)
        if data is None:
            continue
        names.append((data.get("hostname", ""), line))
        if (host := _csv_host(data, line, issues)) is not None:
            hosts.append(host)
    issues.check_unique("host", [(name, line) for name, line in names if name])
    issues.raise_if_any()
    return InventoryDoc(hosts=hosts)


def _csv_host(data: dict[str, str], line: int, issues: Issues) -> HostDoc | None:
    what = item_label("host", data.get("hostname"))
    values: dict[str, Any] = dict(data)
    if "labels" in data:
        values["labels"] = _split_labels(data["labels"], what, line, issues)
    if "groups" in data:
        values["groups"] = [g.strip() for g in data["groups"].split(";") if g.strip()]
    return issues.build(HostDoc, values, what=what, line=line)


def _split_labels(text: str, what: str, line: int, issues: Issues) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            issues.add(line, f"{what}: labels: expected key=value, got {pair!r}")
        elif key.strip() in labels:
            issues.add(line, f"{what}: labels: duplicate label {key.strip()!r}")
        else:
            labels[key.strip()] = value.strip()
    return labels


def render_csv(doc: InventoryDoc) -> str:
    """Render the document's hosts as the hosts CSV (other sections have no place in it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HOST_COLUMNS)
    for h in doc.hosts:
        labels = ";".join(f"{k}={v}" for k, v in _checked_labels(h).items())
        for group in h.groups:
            _check_token(h, "group", group, forbidden=";")
        writer.writerow([
            h.hostname, h.address, h.ssh_port, h.ssh_user, h.model or "", h.rack or "",
            h.cluster or "", h.state, labels, ";".join(h.groups),
        ])  # fmt: skip
    return out.getvalue()


def _checked_labels(host: HostDoc) -> dict[str, str]:
    for key, value in host.labels.items():
        _check_token(host, "label key", key, forbidden=";=")
        _check_token(host, "label value", value, forbidden=";", allow_empty=True)
    return host.labels


def _check_token(
    host: HostDoc, what: str, value: str, *, forbidden: str, allow_empty: bool = False
) -> None:
    """Refuse values the `k=v;k2=v2` cell syntax would silently change on the way back in."""
    if any(c in value for c in forbidden) or value != value.strip() or not (value or allow_empty):
        raise NotExportable(f"host {host.hostname!r}: {what} {value!r} cannot be written to CSV")
