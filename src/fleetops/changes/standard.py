"""Standard workflows: the ones fleetops ships, and the pins that let a change skip review.

A pre-approved change (the health policy's isolation, a repaired device's verification, a
hardware inspection) runs with nobody reviewing it, so it must run exactly what was accepted in
advance: a pin, (name, version, digest of the source). The shipped workflows pin themselves (the
digest of the file in this release) and their names are reserved: nobody registers a version of
them through the API, so nobody can shadow one. A site that wants its own isolation workflow
registers it under its own name and pins it in the settings (`name@version#sha256:...`), which
only whoever runs the server can edit; a setting that names a workflow without a pin still works,
but every change of it waits for review like any other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import yaml

from fleetops.changes.operations import BUILTIN_DIR
from fleetops.changes.pins import PIN, check_form

SHIPPED_DIR = BUILTIN_DIR / "workflows"


@dataclass(frozen=True)
class Pin:
    """One exact workflow: a pre-approved change runs it or nothing."""

    name: str
    version: int
    digest: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}#{self.digest}"


def digest_of(source: str) -> str:
    """The digest a pin names: sha256 of the source text as registered."""
    return "sha256:" + hashlib.sha256(source.encode()).hexdigest()


@cache
def shipped() -> dict[str, tuple[Pin, str]]:
    """The workflows this release ships, by name: their pin and source."""
    found: dict[str, tuple[Pin, str]] = {}
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        source = path.read_text()
        head = yaml.safe_load(source)
        pin = Pin(str(head["name"]), int(head["version"]), digest_of(source))
        found[pin.name] = (pin, source)
    return found


def is_reserved(name: str) -> bool:
    """Whether `name` belongs to a shipped workflow (no one registers a version of it)."""
    return name in shipped()


def parse_setting(value: str) -> tuple[str, Pin | None]:
    """A workflow setting: a shipped name (pinned by this release), `name@version#sha256:...`
    (pinned by the site), or a bare name (not pinned: its changes wait for review)."""
    if value in shipped():
        return value, shipped()[value][0]
    if match := PIN.fullmatch(value):
        pin = Pin(match["name"], int(match["version"]), match["digest"])
        return pin.name, pin
    check_form(value)
    return value, None
