"""Sub-commands imported when one runs, so a CLI does not load every command's module to start.

A `LazyGroup` lists its commands from names and help lines it is given: help, completion and
"did you mean" read those, and only the command a user runs has its module imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer._click import Command, Context  # typer carries its own click; these are its classes
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Lazy:
    """Where a command lives and what help lists for it."""

    target: str  # "module:attribute": a Typer app, or a command function
    help: str  # the first paragraph of the command's own help
    context_settings: Mapping[str, Any] | None = None  # for a command function


class Placeholder(TyperCommand):
    """Stands in for a command in listings until the group loads it to run."""

    def __init__(self, name: str, help_line: str) -> None:
        super().__init__(name, help=help_line)


class LazyGroup(TyperGroup):
    """A group whose commands, named in `lazy` in the order help lists them, load on first use.

    Typer builds the group with `typer.Typer(cls=...)` and takes no extra arguments, so a
    subclass names its commands in the class attribute.
    """

    lazy: ClassVar[Mapping[str, Lazy]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in self.lazy.items():
            self.commands[name] = Placeholder(name, entry.help)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        # Listings read the placeholders; running a command, or completing its arguments,
        # resolves its name here.
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, Placeholder):
            command = self.commands[name] = self.load(name)
        return name, command, rest

    def load(self, name: str) -> Command:
        """Import command `name` and build it as `add_typer`/`command` on this group would."""
        entry = self.lazy[name]
        module, _, attribute = entry.target.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        # A one-entry app gives the command typer would have built inside this group.
        holder = typer.Typer(
            add_completion=False,
            rich_markup_mode=self.rich_markup_mode,
            suggest_commands=self.suggest_commands,
        )
        if isinstance(found, typer.Typer):
            holder.add_typer(found, name=name)
        else:
            settings = dict(entry.context_settings) if entry.context_settings else None
            holder.command(name, context_settings=settings)(found)
        return typer.main.get_group(holder).commands[name]
