"""`fleetops logs parse` itself: the work, and a way in that skips the CLI framework.

The command is used on large files and in scripts that run it per file, where start-up counts:
importing Typer (which imports pydantic) and Rich takes longer than mining 50,000 lines. A command
line of the plain, valid form is therefore recognised here, with the standard library only, and run
without them; anything else (help, a mistake, an option this does not know) goes to the Typer
command, which gives the usual help and errors and then runs `parse_file` too.
"""

from __future__ import annotations

import os
import sys

from fleetops.logs.parse.batch import BlockParser, blocks
from fleetops.logs.parse.headers import content
from fleetops.logs.parse.miner import TemplateMiner


def parse_file(file: str, *, content_only: bool) -> None:
    """Print the records of every line of `file` (`-`: standard input), a block at a time."""
    parser = BlockParser(TemplateMiner(), message=None if content_only else content)
    out = sys.stdout.buffer
    with (
        open(sys.stdin.fileno(), "rb", closefd=False) if file == "-" else open(file, "rb")
    ) as stream:
        for block in blocks(stream):
            out.write(parser.jsonl(block))
            out.flush()


def plain(args: list[str]) -> tuple[str, bool] | None:
    """The file and `--content-only` of a valid `logs parse` command line (the arguments after
    `parse`), or None for anything the Typer command should see."""
    file: str | None = None
    content_only = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--content-only":
            content_only = True
        elif arg in ("-o", "--output"):
            i += 1
            if args[i : i + 1] != ["jsonl"]:
                return None
        elif arg not in ("-ojsonl", "--output=jsonl"):
            if file is not None or (arg.startswith("-") and arg != "-"):
                return None
            file = arg
        i += 1
    if file is None or (file != "-" and not os.path.isfile(file)):
        return None
    return file, content_only
