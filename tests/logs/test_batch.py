"""`logs parse` a block at a time: the per-line path's records, templates as of each block's end."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from fleetops.logs.parse.batch import BLOCK, BlockParser, blocks
from fleetops.logs.parse.headers import content
from fleetops.logs.parse.miner import WILDCARD, Template, TemplateMiner
from fleetops.logs.parse.tokens import join_spans

LOGHUB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "loghub"
SYSTEMS = ["HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "Linux", "OpenStack", "Apache"]
needs_loghub = pytest.mark.skipif(not LOGHUB.is_dir(), reason=f"Loghub samples not at {LOGHUB}")


def batched(data: bytes, size: int = BLOCK, *, content_only: bool = True) -> list[str]:
    """The JSON lines `logs parse` prints for `data`, read `size` bytes at a time."""
    parser = BlockParser(TemplateMiner(), message=None if content_only else content)
    out = b"".join(parser.jsonl(block) for block in blocks(io.BytesIO(data), size))
    return out.decode("ascii").splitlines()


def per_line(data: bytes, size: int = BLOCK, *, content_only: bool = True) -> list[str]:
    """The records of the per-line path (assign, then extract), each block's lines printed with
    their templates as they stand after the block."""
    miner = TemplateMiner()
    printed: list[str] = []
    for block in blocks(io.BytesIO(data), size):
        text = block.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
        assigned = []
        for line in text.removesuffix("\n").split("\n"):
            message = line if content_only else content(line)
            template, spans, _ = miner.resolve(message)
            assigned.append((template, join_spans(message.split(), spans)))
        final = [(miner.canonical(template), words) for template, words in assigned]
        printed += [
            record(len(printed) + i, template.id, template.text, template.extract(words))
            for i, (template, words) in enumerate(final, start=1)
        ]
    return printed


def line_by_line(data: bytes, aliases: dict[int, int] | None = None) -> list[str]:
    """What `logs parse --content-only` printed when it read and mined a line at a time (ids as
    given then; `aliases` receives the merges made on the way)."""
    miner = TemplateMiner()
    printed = []
    with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            match = miner.add(line.rstrip("\n"))
            printed.append(record(number, match.template.id, match.template.text, match.params))
    if aliases is not None:
        aliases.update(miner.aliases)
    return printed


def record(number: int, template_id: int, text: str, params: list[str]) -> str:
    return json.dumps(
        {"line": number, "template_id": template_id, "template": text, "params": params}
    )


def loghub_contents(system: str) -> list[str]:
    path = LOGHUB / system / f"{system}_2k.log_structured_corrected.csv"
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        return [row["Content"] for row in csv.DictReader(f)]


KEYS = ("line", "template_id", "template", "params")


def fields(lines: list[str], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(json.loads(line)[name] for name in names) for line in lines]


@needs_loghub
@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("size", [4096, BLOCK])
def test_records_are_the_per_line_paths_on_loghub(system: str, size: int) -> None:
    """Every line keeps the template id the per-line path gives it, and its template and
    parameters are the per-line path's with the template as it stands at its block's end: a
    record differs from the line-by-line command's only where the template widened since."""
    digits = random.Random(system)

    def other_digits(message: str) -> str:  # a line of the same shape
        return re.sub("[0-9]", lambda _: str(digits.randrange(10)), message)

    data = "".join(f"{m}\n{other_digits(m)}\n" for m in loghub_contents(system)).encode()
    printed = batched(data, size)
    assert printed == per_line(data, size)
    assert printed == [json.dumps(json.loads(line)) for line in printed]
    aliases: dict[int, int] = {}
    before_all = fields(line_by_line(data, aliases), *KEYS)
    for now, before in zip(fields(printed, *KEYS), before_all, strict=True):
        merged_into = before[1]
        while merged_into in aliases and merged_into != now[1]:
            merged_into = aliases[merged_into]
        assert now == before or (now[0] == before[0] and now[1] == merged_into)


def test_lines_equal_but_for_digits_that_masking_keeps_are_assigned_each_by_its_digits() -> None:
    """`eth0` and `eth1` are names: lines that differ there are different events, in whatever
    order they come, and the other digits of such lines are parameters."""
    lines = [f"i40e 0000:3b:00.{i % 4} eth{i % 3}: NIC Link is Down after {i} s" for i in range(40)]
    data = "".join(f"{line}\n" for line in lines).encode()
    printed = batched(data, 256)
    assert printed == per_line(data, 256)
    assert fields(printed, "template_id") == fields(line_by_line(data), "template_id")
    ids = {i % 3: json.loads(line)["template_id"] for i, line in enumerate(printed)}
    assert len(set(ids.values())) == 3
    assert fields(printed[7:8], "template", "params") == [
        ("<*> eth1: NIC Link is Down after <*> s", ["i40e 0000:3b:00.3", "7"])
    ]


def test_a_template_that_widens_within_a_block_is_printed_widened_for_the_whole_block() -> None:
    data = b"session closed for user news\nsession closed for user root\n"
    assert fields(batched(data), "template_id", "template", "params") == [
        (1, "session closed for user <*>", ["news"]),
        (1, "session closed for user <*>", ["root"]),
    ]
    # a block printed before the template widened keeps the text it had
    assert fields(batched(data, 16), "template", "params") == [
        ("session closed for user news", []),
        ("session closed for user <*>", ["root"]),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"disk 1 failed\ndisk 2 failed",  # no newline at the end
        b"disk 1 failed\r\ndisk 2 failed\r\n",  # \r\n ends a line, as text mode reads it
        b"disk 1 failed\rdisk 2 failed\n\n\r\n",  # so does a lone \r; empty lines count
        b"disk \xff 1 failed\ndisk \xe2\x82 2 failed\n",  # invalid UTF-8 is replaced
        'caf\u00e9 "quoted" \\ tab\t 1 \u2713 \U0001f600 2\n'.encode(),  # as json.dumps escapes
    ],
    ids=["empty", "no-newline", "crlf", "cr", "invalid-utf8", "escapes"],
)
def test_lines_are_read_as_the_line_by_line_command_read_them(data: bytes) -> None:
    for size in (1, 3, BLOCK):  # a \r\n split between two reads is one line end
        assert batched(data, size) == line_by_line(data)


def test_blocks_end_at_line_ends_and_lose_nothing() -> None:
    data = b"a 1\nb 22\r\nc 333\rd\n\ne 55555"
    for size in range(1, len(data) + 2):
        read = list(blocks(io.BytesIO(data), size))
        assert b"".join(read) == data
        assert all(block.endswith((b"\n", b"\r")) for block in read[:-1])
        assert not any(a.endswith(b"\r") and b.startswith(b"\n") for a, b in pairwise(read))


@needs_loghub
@pytest.mark.parametrize("system", ["HDFS", "Linux", "Spark"])
def test_headers_are_stripped_before_mining_without_content_only(system: str) -> None:
    """A header's length depends on the line's shape alone: the parameters are sliced from
    the line past it."""
    data = (LOGHUB / system / f"{system}_2k.log").read_bytes()
    printed = batched(data, 4096, content_only=False)
    assert printed == per_line(data, 4096, content_only=False)


def test_template_counts_are_the_per_line_paths() -> None:
    data = b"".join(
        f"job {i % 7} done on node-{i}\nport eth{i % 2} up\n".encode() for i in range(50)
    )
    miner = TemplateMiner()
    parser = BlockParser(miner)
    for block in blocks(io.BytesIO(data), 100):
        parser.jsonl(block)
    alone = TemplateMiner()
    for line in data.decode().splitlines():
        alone.add(line)
    assert [(t.id, t.text, t.count) for t in miner.templates] == [
        (t.id, t.text, t.count) for t in alone.templates
    ]


def test_a_template_that_keeps_a_digit_takes_each_lines_parameters_from_the_line() -> None:
    """The miner's templates for lines whose digits all fall to masking hold no digit, so each
    digit is in a parameter and the first place of a parameter's text is its own. A template
    that kept one (`ab1`) could hold the text before the parameter: its lines go one by one."""
    template = Template(id=1, tokens=["ab1", WILDCARD, f"x{WILDCARD}"])
    row = BlockParser(TemplateMiner())._place(template, [], "ab1 1 x1").row
    assert row[1](7, "ab1 5 x6") == record(7, 1, f"ab1 {WILDCARD} x{WILDCARD}", ["5", "6"]) + "\n"
