"""Import and export formats: pure functions between file text and an `InventoryDoc`.

Parsers never touch the database and never half-succeed: a bad file raises `ImportFailed` with
every problem found and its line. Checking references against the fleet is the service's job.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import PurePath

import yaml

from fleetops.inventory.document import ImportFailed, ImportIssue, InventoryDoc
from fleetops.inventory.formats import ansible, native, netbox
from fleetops.inventory.formats.native import NotExportable

__all__ = ["FORMATS", "NotExportable", "detect_format", "parse", "render"]

FORMATS = ("yaml", "csv", "ansible-ini", "ansible-yaml", "netbox-csv")

_PARSERS: dict[str, Callable[[str], InventoryDoc]] = {
    "yaml": native.parse_yaml,
    "csv": native.parse_csv,
    "ansible-ini": ansible.parse_ini,
    "ansible-yaml": ansible.parse_yaml,
    "netbox-csv": netbox.parse,
}
_RENDERERS: dict[str, Callable[[InventoryDoc], str]] = {
    "yaml": native.render_yaml,
    "csv": native.render_csv,
    "ansible-ini": ansible.render_ini,
    "ansible-yaml": ansible.render_yaml,
    "netbox-csv": netbox.render,
}
_INI_SECTION = re.compile(r"^\[[^:\]\s]+(?::\w+)?\]\s*(?:#.*)?$", re.MULTILINE)
_NATIVE_SECTIONS = frozenset(InventoryDoc.model_fields)
_ANSIBLE_GROUP_KEYS = frozenset({"hosts", "children", "vars"})


def parse(text: str, fmt: str) -> InventoryDoc:
    """Parse `text` in format `fmt`; raise ImportFailed listing every problem with its line."""
    if fmt not in _PARSERS:
        issue = ImportIssue(line=None, message=f"unknown format {fmt!r}; expected one of {FORMATS}")
        raise ImportFailed([issue])
    return _PARSERS[fmt](text)


def render(doc: InventoryDoc, fmt: str) -> str:
    """Render `doc` in format `fmt`; raise NotExportable if the format cannot hold it faithfully."""
    if fmt not in _RENDERERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return _RENDERERS[fmt](doc)


def detect_format(filename: str, text: str) -> str:
    """Guess the format from the file's extension, then its content; Ansible INI is the fallback.

    The fallback is INI because a bare list of host names is a valid INI inventory.
    """
    suffix = PurePath(filename).suffix.lower()
    if suffix in (".ini", ".cfg"):
        return "ansible-ini"
    if suffix in (".csv", ".tsv"):
        return _sniff_csv(text) or "csv"
    if suffix in (".yaml", ".yml", ".json"):
        return _sniff_yaml(text) or "yaml"
    if _INI_SECTION.search(text):
        return "ansible-ini"
    return _sniff_yaml(text) or _sniff_csv(text) or "ansible-ini"


def _sniff_yaml(text: str) -> str | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:  # broken YAML still names its flavour at the top level
        return "ansible-yaml" if re.search(r"^all:", text, re.MULTILINE) else None
    if not isinstance(data, dict):
        return None
    if data and set(data) <= _NATIVE_SECTIONS:
        return "yaml"
    groups = [body for body in data.values() if isinstance(body, dict)]
    if "all" in data or any(_ANSIBLE_GROUP_KEYS & set(body) for body in groups):
        return "ansible-yaml"
    return None


def _sniff_csv(text: str) -> str | None:
    first = next((line for line in text.removeprefix("\ufeff").splitlines() if line.strip()), "")
    try:
        header = {netbox.normalize_column(column) for column in next(csv.reader([first]), [])}
    except csv.Error:
        return None
    if "hostname" in header:
        return "csv"
    if "name" in header and header & netbox.NETBOX_COLUMNS:
        return "netbox-csv"
    return None
