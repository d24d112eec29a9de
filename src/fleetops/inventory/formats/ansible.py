"""Ansible inventories, INI and YAML, read the way `ansible-inventory` reads them.

Both syntaxes fill the same small model of groups and hosts (each variable keeps the line that set
it), which is then flattened into host documents: group membership including parents becomes
`groups`, the connection variables and a few well-known ones become fields, the rest `labels`.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fleetops.devices.enums import Lifecycle
from fleetops.inventory.document import HostDoc, InventoryDoc
from fleetops.inventory.formats.native import (
    Issues,
    LineMap,
    NotExportable,
    dump_yaml,
    item_label,
    load_yaml,
    stringify,
)

IMPLICIT_GROUPS = ("all", "ungrouped")
# HostDoc field <- Ansible variables, the first present wins; the others stay labels.
FIELD_VARS = {
    "address": ("ansible_host", "ansible_ssh_host"),
    "ssh_port": ("ansible_port", "ansible_ssh_port"),
    "ssh_user": ("ansible_user", "ansible_ssh_user"),
    "rack": ("rack",),
    "cluster": ("cluster",),
    "model": ("model", "sku"),
    "state": ("state",),
}
_RESERVED = {var for names in FIELD_VARS.values() for var in names}
_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_SHLEX_SPACE = re.compile(r"[ \t\r\n]+")
_INI_VAR_NAME = re.compile(r"[^\s=#'\"\\]+")
_MAX_RANGE = 100_000  # a typo like dn-[1:99999999] must not exhaust memory

Vars = dict[str, tuple[object, int]]  # variable -> (value, line that set it)


@dataclass
class _Group:
    line: int
    hosts: dict[str, None] = field(default_factory=dict)  # ordered sets: big groups stay fast
    children: dict[str, None] = field(default_factory=dict)
    vars: Vars = field(default_factory=dict)


@dataclass
class _Host:
    line: int
    vars: Vars = field(default_factory=dict)


@dataclass
class _Inventory:
    issues: Issues
    groups: dict[str, _Group] = field(default_factory=dict)
    hosts: dict[str, _Host] = field(default_factory=dict)

    def group(self, name: str, line: int) -> _Group:
        return self.groups.setdefault(name, _Group(line))

    def add_child(self, parent: str, child: str, line: int) -> None:
        self.group(child, line)
        self.group(parent, line).children[child] = None

    def add_host(self, name: str, group: str, variables: Vars, line: int) -> None:
        """Add a host to a group; a variable set twice to different values is an issue."""
        host = self.hosts.setdefault(name, _Host(line))
        for key, (value, at) in variables.items():
            if key in host.vars and host.vars[key][0] != value:
                old, old_line = host.vars[key]
                self.issues.add(
                    at,
                    f"host {name!r}: {key} redefined as {value!r} (was {old!r} on line {old_line})",
                )
        host.vars.update(variables)
        self.group(group, line).hosts[name] = None

    def to_doc(self) -> InventoryDoc:
        """Flatten groups into each host's memberships and variables (children override parents)."""
        parents: dict[str, list[str]] = {}
        direct: dict[str, list[str]] = {}
        for name, group in self.groups.items():
            for child in group.children:
                if name != "all":  # everything is below `all`; its variables go first anyway
                    parents.setdefault(child, []).append(name)
            for host_name in group.hosts:
                direct.setdefault(host_name, []).append(name)
        depth = _depths(list(self.groups), parents)
        for name in depth:
            if name in _ancestors(parents.get(name, []), parents):
                self.issues.add(self.groups[name].line, f"group {name!r} is its own ancestor")
        hosts = []
        for name, host in self.hosts.items():
            groups = _ancestors(direct[name], parents) - {"all"}
            merged: Vars = dict(self.groups["all"].vars) if "all" in self.groups else {}
            for group_name in sorted(groups, key=lambda g: (depth[g], g)):
                merged.update(self.groups[group_name].vars)
            merged.update(host.vars)
            member_of = sorted(groups - set(IMPLICIT_GROUPS))
            if (doc := _host_doc(name, host.line, merged, member_of, self.issues)) is not None:
                hosts.append(doc)
        self.issues.raise_if_any()
        return InventoryDoc(hosts=hosts)


def _ancestors(groups: list[str], parents: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    todo = list(groups)
    while todo:
        if (group := todo.pop()) not in found:
            found.add(group)
            todo.extend(parents.get(group, []))
    return found


def _depths(groups: list[str], parents: dict[str, list[str]]) -> dict[str, int]:
    """Longest path up to a top group; deeper groups' variables win, as in Ansible.

    Relaxed in passes rather than recursively, so neither deep nesting nor a loop can overflow.
    """
    depth = dict.fromkeys(groups, 0)
    for _ in groups:
        changed = False
        for child, above in parents.items():
            if (deeper := 1 + max(depth[p] for p in above)) > depth[child]:
                depth[child], changed = deeper, True
        if not changed:
            break
    return depth


def _host_doc(
    name: str, line: int, variables: Vars, groups: list[str], issues: Issues
) -> HostDoc | None:
    remaining = dict(variables)
    data: dict[str, object] = {"hostname": name, "groups": groups}
    lines: dict[str, int] = {}
    names: dict[str, str] = {"hostname": "host"}
    for target, candidates in FIELD_VARS.items():
        if (var := next((n for n in candidates if n in remaining), None)) is not None:
            value, lines[target] = remaining.pop(var)
            plain = isinstance(value, int | float) and not isinstance(value, bool)
            data[target] = str(value) if plain and target != "ssh_port" else value
            names[target] = var
    secrets = {var: str(remaining.pop(var)[0]) for var in SECRET_VARS if var in remaining}
    data["labels"] = {key: _label(value) for key, (value, _) in remaining.items()}
    data["secrets"] = secrets
    what = item_label("host", name)
    return issues.build(HostDoc, data, what=what, line=line, field_lines=lines, field_names=names)


def _label(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return stringify(value)


# --- host patterns ----------------------------------------------------------------------------


def expand_host_pattern(pattern: str) -> tuple[list[str], str | None]:
    """Split `name:port` and expand `dn-[01:40]`/`dn-[a:c]` ranges as Ansible does."""
    port = None
    if re.sub(r"\[[^\]]*\]", "", pattern).count(":") == 1:  # IPv6 literals have several
        head, _, tail = pattern.rpartition(":")
        if not tail.isdigit():
            raise ValueError(f"host pattern {pattern!r}: expected a port number after ':'")
        pattern, port = head, tail
    return expand_range(pattern), port


def expand_range(pattern: str) -> list[str]:
    """Expand every `[begin:end(:step)]` in a host name, left to right."""
    head, bracket, rest = pattern.partition("[")
    if not bracket:
        return [pattern]
    body, closed, tail = rest.partition("]")
    if not closed:
        raise ValueError(f"host pattern {pattern!r}: unclosed '['")
    names: list[str] = []
    for item in _range_items(body):
        names.extend(expand_range(head + item + tail))
        if len(names) > _MAX_RANGE:
            raise ValueError(f"host pattern {pattern!r} expands to more than {_MAX_RANGE} hosts")
    return names


def _range_items(body: str) -> list[str]:
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError(f"host range [{body}] must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    step = bounds[2] if len(bounds) == 3 else "1"
    if not step.isdigit() or int(step) < 1:
        raise ValueError(f"host range [{body}]: step must be a positive number")
    letters = string.ascii_letters
    if len(begin) == len(end) == 1 and begin in letters and end in letters:
        if letters.index(begin) > letters.index(end):
            raise ValueError(f"host range [{body}] must have begin <= end")
        return list(letters[letters.index(begin) : letters.index(end) + 1 : int(step)])
    if not (begin.isdigit() and end.isdigit()):
        raise ValueError(f"host range [{body}] must be numeric or single letters")
    width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
    if width and len(end) != width:
        raise ValueError(f"host range [{body}]: zero-padded begin and end must be equally long")
    numbers = range(int(begin), int(end) + 1, int(step))
    if len(numbers) > _MAX_RANGE:
        raise ValueError(f"host range [{body}] expands to more than {_MAX_RANGE} hosts")
    return [str(n).zfill(width) for n in numbers]


def _add_pattern(inv: _Inventory, group: str, pattern: str, variables: Vars, line: int) -> None:
    try:
        names, port = expand_host_pattern(pattern)
    except ValueError as exc:
        inv.issues.add(line, str(exc))
        return
    if port is not None:
        variables = {**variables, "ansible_port": (port, line)}
    for name in names:
        inv.add_host(name, group, variables, line)


# --- INI --------------------------------------------------------------------------------------


@dataclass
class _IniState:
    group: str = "ungrouped"
    kind: str = "hosts"  # hosts | children | vars | skip (after a broken section header)
    declared: set[str] = field(default_factory=lambda: set(IMPLICIT_GROUPS))
    references: list[tuple[int, str, str]] = field(default_factory=list)  # line, group, message


def parse_ini(text: str) -> InventoryDoc:
    """Parse an Ansible INI inventory."""
    inv, state = _Inventory(Issues()), _IniState()
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if (section := _SECTION.match(line)) is not None:
            _enter_section(inv, state, section[1], section[2] or "hosts", number)
        elif line.startswith("[") and (line.endswith("]") or "]" not in line):
            inv.issues.add(number, f"invalid section header {line!r}")
            state.kind = "skip"
        elif state.kind == "hosts":
            _ini_host(inv, state.group, line, number)
        elif state.kind == "children":
            _ini_child(inv, state, line, number)
        elif state.kind == "vars":
            _ini_var(inv, state.group, line, number)
    for number, group, message in state.references:
        if group not in state.declared:
            inv.issues.add(number, message)
    return inv.to_doc()


def _enter_section(inv: _Inventory, state: _IniState, group: str, kind: str, line: int) -> None:
    state.group, state.kind = group, kind
    if kind not in ("hosts", "children", "vars"):
        inv.issues.add(line, f"section [{group}:{kind}] has unknown type {kind!r}")
        state.kind = "skip"
    elif kind == "vars":
        message = f"section [{group}:vars] is for undefined group {group!r}"
        state.references.append((line, group, message))
    else:
        state.declared.add(group)
    inv.group(group, line)


def _ini_host(inv: _Inventory, group: str, line: str, number: int) -> None:
    try:
        pattern, *assignments = _tokens(line)
    except ValueError as exc:  # e.g. "No closing quotation"
        inv.issues.add(number, f"cannot parse host line: {exc}")
        return
    variables: Vars = {}
    for token in assignments:
        key, sep, value = token.partition("=")
        if sep and key:
            variables[key] = (value, number)
    if bad := [t for t in assignments if not t.partition("=")[0] or "=" not in t]:
        listed = ", ".join(repr(t) for t in bad)
        inv.issues.add(number, f"expected key=value host variables, got {listed}")
    _add_pattern(inv, group, pattern, variables, number)


def _tokens(line: str) -> list[str]:
    """Split a host line as Ansible's shlex does; lines without quoting skip its slow tokenizer."""
    if any(c in line for c in "'\"\\"):
        return shlex.split(line, comments=True)
    return [token for token in _SHLEX_SPACE.split(line.partition("#")[0]) if token]


def _ini_child(inv: _Inventory, state: _IniState, line: str, number: int) -> None:
    if (match := _GROUP_NAME.match(line)) is None:
        inv.issues.add(number, f"expected a group name, got {line!r}")
        return
    message = f"section [{state.group}:children] includes undefined group {match[1]!r}"
    state.references.append((number, match[1], message))
    inv.add_child(state.group, match[1], number)


def _ini_var(inv: _Inventory, group: str, line: str, number: int) -> None:
    key, sep, value = (part.strip() for part in line.partition("="))
    if not sep or not key:
        inv.issues.add(number, f"expected key=value, got {line!r}")
    else:
        inv.group(group, number).vars[key] = (_unquote(value), number)


def _unquote(value: str) -> str:
    """Strip one pair of quotes, as Ansible's literal_eval of group variables does."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        try:
            unquoted = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        return unquoted if isinstance(unquoted, str) else value
    return value


# --- YAML -------------------------------------------------------------------------------------


def parse_yaml(text: str) -> InventoryDoc:
    """Parse an Ansible YAML inventory (`all: {hosts: ..., children: ..., vars: ...}`)."""
    inv = _Inventory(Issues())
    data = load_yaml(text, inv.issues)
    if isinstance(data, LineMap):
        for name, body in data.items():
            _yaml_group(inv, str(name), body, data.key_lines[name], path=())
    elif data is not None:
        inv.issues.add(1, "expected a mapping of groups, e.g. 'all:'")
    return inv.to_doc()


def _yaml_group(inv: _Inventory, name: str, body: object, line: int, path: tuple[str, ...]) -> None:
    inv.group(name, line)
    if body is None or name in path:  # a loop (via an alias) is reported when flattening
        return
    if not isinstance(body, LineMap):
        inv.issues.add(line, f"group {name!r}: expected a mapping of hosts, children and vars")
        return
    for key, value in body.items():
        at = body.key_lines[key]
        if key not in ("hosts", "children", "vars"):
            inv.issues.add(
                at, f"group {name!r}: unexpected key {key!r}; expected hosts/children/vars"
            )
        elif value is not None and not isinstance(value, LineMap):
            inv.issues.add(at, f"group {name!r}: {key} must be a mapping")
        elif key == "vars" and value:
            inv.groups[name].vars.update(_yaml_vars(value))
        elif value:
            for item, item_body in value.items():
                at = value.key_lines[item]
                if key == "hosts":
                    _yaml_host(inv, name, str(item), item_body, at)
                else:
                    inv.add_child(name, str(item), at)
                    _yaml_group(inv, str(item), item_body, at, (*path, name))


def _yaml_host(inv: _Inventory, group: str, pattern: str, body: object, line: int) -> None:
    if body is not None and not isinstance(body, LineMap):
        inv.issues.add(line, f"host {pattern!r}: expected a mapping of variables")
        return
    _add_pattern(inv, group, pattern, _yaml_vars(body) if body else {}, line)


def _yaml_vars(mapping: LineMap) -> Vars:
    return {str(key): (value, mapping.key_lines[key]) for key, value in mapping.items()}


# --- export -----------------------------------------------------------------------------------


def _host_vars(host: HostDoc) -> dict[str, str | int]:
    """The variables that make Ansible reach the host as fleetops would."""
    if ":" in host.hostname:
        raise NotExportable(f"host {host.hostname!r}: Ansible reads ':' in a host name as a port")
    variables: dict[str, str | int] = {}
    if host.address:
        variables["ansible_host"] = host.address
    if host.ssh_port != 22:
        variables["ansible_port"] = host.ssh_port
    # Always written: Ansible's default user is whoever runs it, fleetops' is root.
    variables["ansible_user"] = host.ssh_user
    for name in ("rack", "cluster", "model"):
        if value := getattr(host, name):
            variables[name] = value
    if host.state != Lifecycle.IN_SERVICE:
        variables["state"] = host.state
    for key, value in host.labels.items():
        if key in _RESERVED:
            raise NotExportable(f"host {host.hostname!r}: label {key!r} clashes with a field")
        variables[key] = value
    return variables


def _members(doc: InventoryDoc) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for host in doc.hosts:
        for group in host.groups:
            if group in IMPLICIT_GROUPS or not _GROUP_NAME.fullmatch(group):
                raise NotExportable(f"host {host.hostname!r}: cannot export group {group!r}")
            groups.setdefault(group, []).append(host.hostname)
    return groups


def render_ini(doc: InventoryDoc) -> str:
    """Render hosts with inline variables, then one section per group listing its members."""
    lines = ["# fleetops inventory export"]
    for host in doc.hosts:
        assignments = []
        for key, value in _host_vars(host).items():
            text = str(value)
            if not _INI_VAR_NAME.fullmatch(key) or (text and text.splitlines() != [text]):
                raise NotExportable(f"host {host.hostname!r}: label {key!r} does not fit on a line")
            assignments.append(f"{key}={shlex.quote(text)}")
        lines.append(" ".join([host.hostname, *assignments]))
    for group, members in _members(doc).items():
        lines += ["", f"[{group}]", *members]
    return "\n".join(lines) + "\n"


def render_yaml(doc: InventoryDoc) -> str:
    """Render `all:` with every host and its variables, and each group as a child of `all`."""
    everything: dict[str, object] = {"hosts": {h.hostname: _host_vars(h) for h in doc.hosts}}
    if groups := _members(doc):
        hosts_of = {g: {"hosts": dict.fromkeys(members)} for g, members in groups.items()}
        everything["children"] = hosts_of
    return dump_yaml({"all": everything})


# --- connection variables ---------------------------------------------------------------------

KEY_FILE_VARS = ("ansible_ssh_private_key_file", "ansible_private_key_file")
BECOME_PASSWORD_VARS = ("ansible_become_password", "ansible_become_pass")
# Kept apart from labels (`HostDoc.secrets`): a label is stored and shown to every reader.
LOGIN_PASSWORD_VARS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
SECRET_VARS = (*BECOME_PASSWORD_VARS, *LOGIN_PASSWORD_VARS)
COMMON_ARGS_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
# Read here or as host fields, or harmless: not reported as unused.
_HANDLED = {var for names in FIELD_VARS.values() for var in names} | {
    "ansible_python_interpreter",
    "ansible_become",
    "ansible_become_user",
    "ansible_become_method",
    "ansible_connection",
    *KEY_FILE_VARS,
    *COMMON_ARGS_VARS,
    *BECOME_PASSWORD_VARS,
}
_TRUE = {"true", "yes", "on", "1", "y", "t"}


def connection(
    labels: Mapping[str, str], secrets: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """How to reach a host, from the Ansible connection variables among its labels (and the
    passwords its file gave, `secrets`): the key file, a jump host and `become`, as fields of an
    executor's target; and what was not used, one note each, so that nothing is ignored
    silently."""
    found: dict[str, str] = {}
    notes: list[str] = []
    labels = {**labels, **(secrets or {})}
    if (var := next((v for v in KEY_FILE_VARS if labels.get(v)), None)) is not None:
        found["key_path"] = str(Path(labels[var]).expanduser())
    for var in COMMON_ARGS_VARS:
        if labels.get(var):
            jump, ignored = _ssh_args(labels[var])
            if jump:
                found["jump"] = jump
            notes += [f"{var}: {arg!r} is not applied (only ProxyJump / -J is)" for arg in ignored]
    if labels.get("ansible_become", "").strip().lower() in _TRUE:
        method = labels.get("ansible_become_method", "sudo")
        if method != "sudo":
            notes.append(f"ansible_become_method={method} is not supported (only sudo is)")
        found["become_user"] = labels.get("ansible_become_user") or "root"
        password = next((labels[v] for v in BECOME_PASSWORD_VARS if labels.get(v)), "")
        if password.lstrip().startswith("$ANSIBLE_VAULT"):
            notes.append(
                "a vault-encrypted become password is not decrypted: give it with "
                "--ask-become-pass or --become-password-file"
            )
        elif password:
            found["become_password"] = password
    for var in sorted(labels):
        if var in LOGIN_PASSWORD_VARS:
            notes.append(f"{var} is not used: fleetops logs in with keys only")
        elif var == "ansible_connection" and labels[var] not in ("ssh", "smart"):
            notes.append(f"ansible_connection={labels[var]} is not supported (ssh is used)")
        elif var.startswith("ansible_") and var not in _HANDLED:
            notes.append(f"{var} is not used")
    return found, notes


def _ssh_args(text: str) -> tuple[str, list[str]]:
    """The ProxyJump in ssh arguments (`-J spec`, `-o ProxyJump=spec`), and the arguments that
    are something else."""
    try:
        args = shlex.split(text)
    except ValueError:
        return "", [text]
    jump, ignored = "", []
    i = 0
    while i < len(args):
        arg = args[i]
        value = None
        if arg in ("-J", "-o") and i + 1 < len(args):
            value, i = (arg, args[i + 1]), i + 1
        elif arg.startswith(("-J", "-o")) and len(arg) > 2:
            value = (arg[:2], arg[2:])
        if value is None:
            ignored.append(arg)
        elif value[0] == "-J":
            jump = value[1]
        else:
            key, _, spec = value[1].replace(" ", "=", 1).partition("=")
            if key.lower() == "proxyjump" and spec:
                jump = spec
            else:
                ignored.append(f"-o {value[1]}")
        i += 1
    return jump, ignored
