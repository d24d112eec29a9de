"""The output options every domain's CLI declares, importable without the API client.

A domain's commands and their options are declared whenever its command group loads, also for a
command that never speaks to the API (`logs parse`): declaring them must not load the client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

OutputOption = Annotated[
    str, typer.Option("--output", "-o", help="table, json or yaml", case_sensitive=False)
]
FORMATS = ("table", "json", "yaml")
Column = tuple[str, str | Callable[[dict[str, Any]], Any]]  # a table's header, and key or getter
