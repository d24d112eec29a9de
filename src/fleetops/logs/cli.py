"""`fleetops logs parse`: mine templates from a log file, one JSON line per input line."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from fleetops.kit.cli import EXIT_USAGE, fail
from fleetops.logs.parse.miner import TemplateMiner

logs_app = typer.Typer(
    help="Logs: template mining (ingestion and detectors to come).", no_args_is_help=True
)

# Common line headers: ISO or syslog timestamps, Hadoop/HDFS "yyMMdd HHmmss pid LEVEL Class:".
_HEADERS = [
    re.compile(
        r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\s+"
        r"(?:\[[^\]]*\]\s+)?(?:[A-Z]+\s+)?(?:\[[^\]]*\]\s+)?(?:[\w.$-]+:\s+)?"
    ),
    re.compile(r"^[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}\s+\S+\s+[\w./()-]+(?:\[\d+\])?:\s+"),
    re.compile(r"^\d{6}\s+\d{6}\s+\d+\s+[A-Z]+\s+[\w.$]+:\s+"),
    re.compile(r"^\d{2}/\d{2}/\d{2}\s+\d{2}:\d{2}:\d{2}\s+[A-Z]+\s+[\w.$]+:\s+"),
]


def content(line: str) -> str:
    """The message part of a log line (known headers stripped; the line itself otherwise)."""
    for header in _HEADERS:
        if match := header.match(line):
            return line[match.end() :]
    return line


@logs_app.command("parse")
def parse(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="log file, or - ")],
    content_only: Annotated[
        bool, typer.Option("--content-only", help="each line is the message itself")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="jsonl")] = "jsonl",
) -> None:
    """Print {"line", "template_id", "template", "params"} for every line of FILE."""
    if output != "jsonl":
        fail(f"unknown output {output!r}; logs parse writes jsonl", EXIT_USAGE)
    miner = TemplateMiner()
    with file.open(encoding="utf-8", errors="replace") as lines:
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\n")
            match = miner.add(line if content_only else content(line))
            sys.stdout.write(
                json.dumps(
                    {
                        "line": number,
                        "template_id": match.template.id,
                        "template": match.template.text,
                        "params": match.params,
                    }
                )
                + "\n"
            )
