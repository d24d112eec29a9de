"""Mine log lines a block at a time and print each line's template as a JSON record.

Mining one line at a time spends more on Python's work per line (a cache lookup, splitting the
message, slicing out its parameters, formatting the record) than on mining. The miner treats lines
that are equal once their digits are zeroed as one shape: masking looks at a word's shape, never at
its digits, so such lines share a template and hold their parameters at the same places. A block
of lines is therefore assigned once per distinct zeroed line, the places of a shape's parameters
are found once, and each line's record is a few slices of the line in one comprehension.

In a shape where a digit survives masking (`eth0`) the line's own digits decide its template: its
lines are assigned one by one (once per block for lines that agree on the digits masking keeps)
and their records are made a line at a time, as are those of a shape whose parameters are not all
slices of its lines (a date whose words two spaces part is one parameter with one space).

Lines are assigned in the order the per-line path would assign them, so template ids are the same.
Each line is printed with its template as it stands after its whole block: a template that widens
within a block is printed widened, with the parameters it takes, for the block's earlier lines too,
and one merged into an older template is printed as that one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from heapq import merge
from itertools import compress, count, islice
from json.encoder import encode_basestring_ascii as _string  # what json.dumps uses
from operator import itemgetter
from typing import Any, BinaryIO, NamedTuple

from fleetops.logs.parse.miner import Spans, Template, TemplateMiner
from fleetops.logs.parse.tokens import Bounded, join_spans, mask_word

BLOCK = 1 << 18  # bytes read at a time
SLOTS = 6  # parameters a record is sliced with in the comprehension; more take a function call

_ZERO = bytes.maketrans(b"123456789", b"000000000")  # as the miner zeroes messages
_DIGIT = re.compile("[0-9]")
_OWN_SHAPES = 65_536  # shapes whose digits survive masking, remembered (then forgotten at once)

# A shape's row: (number of parameters k, the record's head, the slice of the line each parameter
# is, None up to SLOTS), or (_CALL, a function of line number and line, None...).
Row = tuple[Any, ...]
Assigned = tuple[Template, Spans]
_CALL = -1
_NONE = (None,) * SLOTS
_BETWEEN = '", "'  # between two parameters in a record


def blocks(stream: BinaryIO, size: int = BLOCK) -> Iterator[bytes]:
    """Read `size` bytes at a time, cut after the last line end (the last block: at the end)."""
    held: list[bytes] = []  # what follows the last line end read
    while chunk := stream.read(size):
        # a \r at the very end may be the first half of \r\n: it waits for the next read
        end = chunk.rfind(b"\n") + 1 or chunk.rfind(b"\r", 0, -1) + 1
        if not end:
            held.append(chunk)  # a line longer than a read is joined once, when it ends
            continue
        yield b"".join([*held, chunk[:end]])
        held = [chunk[end:]]
    if rest := b"".join(held):
        yield rest


class BlockParser:
    """Turns blocks of whole lines into `logs parse` records, numbering lines from 1 on."""

    def __init__(
        self,
        miner: TemplateMiner,
        message: Callable[[str], str] | None = None,
        *,
        cache_size: int = 100_000,
    ) -> None:
        self.miner = miner
        self.message = message or _whole  # the part of a line that is mined
        self.lines = 0
        self._placed: Bounded[bytes, _Placed] = Bounded(cache_size)  # by zeroed line
        self._own = _OwnShapes(miner, self.message)
        self._own_row: Row = (_CALL, self._own_record, *_NONE)
        self._heads: dict[Template, str] = {}  # this block's (a template may widen in the next)

    def jsonl(self, block: bytes) -> bytes:
        """The records of a block of whole lines, one JSON object a line."""
        if b"\r" in block:  # as text mode reads: \r\n and a lone \r end a line too
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if block.endswith(b"\n"):
            block = block[:-1]
        zeroed = block.translate(_ZERO).split(b"\n")
        lines = block.decode("utf-8", "replace").split("\n")
        first = self.lines + 1
        self.lines += len(lines)
        self._heads.clear()
        own, shared = self._assign(zeroed, lines, first)
        rows, escaped = self._rows(own, shared, zeroed, lines)
        if escaped:  # their rows slice the line as JSON writes it
            for i in compress(range(len(lines)), map(escaped.__contains__, zeroed)):
                lines[i] = _string(lines[i])
        return "".join(_records(first, lines, map(rows.__getitem__, zeroed))).encode()

    def _assign(
        self, zeroed: list[bytes], lines: list[str], first: int
    ) -> tuple[set[bytes], dict[bytes, tuple[Template, Spans, int]]]:
        """Assign the block's lines in the order the per-line path would: each shape at its
        first line, and each line of a shape whose digits survive masking. Return those shapes,
        and the others' template, spans and first line (-1: not looked for)."""
        counts = Counter(zeroed)
        own = self._own.begin(counts)
        pending = list(compress(range(len(zeroed)), map(own.__contains__, zeroed))) if own else []
        shared: dict[bytes, tuple[Template, Spans, int]] = {}
        done = at = 0
        for form, times in counts.items():
            if form in own:
                continue
            placed = self._placed.get(form)
            if (
                placed is not None
                and placed.slots is placed.template.slots
                and placed.template.alias_of is None
            ):
                # placed before, its template unchanged since: the miner would answer from its
                # cache, and assigning the lines changes nothing but the count
                placed.template.count += times
                shared[form] = (placed.template, placed.spans, -1)
                continue
            at = zeroed.index(form, at)
            while done < len(pending) and pending[done] < at:
                i = pending[done]
                self._own.assign(zeroed[i], lines[i], first + i)
                done += 1
            template, spans, alike = self.miner.resolve(self.message(lines[at]))
            if alike:
                template.count += times - 1  # as if each line had been assigned
                shared[form] = (template, spans, at)
                continue
            self._own.found(form, lines[at], first + at, (template, spans))
            own.add(form)
            pending[done:] = merge(pending[done:], _indices(zeroed, form, at + 1))
        for i in pending[done:]:
            self._own.assign(zeroed[i], lines[i], first + i)
        return own, shared

    def _rows(
        self,
        own: set[bytes],
        shared: dict[bytes, tuple[Template, Spans, int]],
        zeroed: list[bytes],
        lines: list[str],
    ) -> tuple[dict[bytes, Row], set[bytes]]:
        """Each shape's row for its template as it stands after the block; also the shapes
        whose rows slice the line as JSON writes it."""
        rows = dict.fromkeys(own, self._own_row)
        escaped = set()
        for form, (assigned, spans, at) in shared.items():
            template = self.miner.canonical(assigned)  # merged since: the one it joined
            placed = self._placed.get(form)
            if placed is None or not placed.holds(template, spans):
                line = lines[at if at >= 0 else zeroed.index(form)]
                placed = self._place(template, spans, line)
                self._placed.put(form, placed)
            rows[form] = placed.row
            if placed.escaped:
                escaped.add(form)
        return rows, escaped

    def _place(self, template: Template, spans: Spans, line: str) -> _Placed:
        """Find where the template's parameters sit in one line of the shape."""
        message = self.message(line)
        params = _params(template, spans, message)
        # a template holding no digit leaves every digit of a line in its parameters
        places = None if _DIGIT.search(template.text) else _places(message, params)
        if places is None:
            per_line = partial(self._per_line_record, template, spans)
            return _Placed(template, spans, template.slots, (_CALL, per_line, *_NONE), False)
        if message is not line:
            offset = len(line) - len(message)
            places = [offset + place for place in places]
        escaped = len(_string(line)) != len(line) + 2
        if escaped:  # where the places are in the line as JSON writes it (quotes included)
            places = [len(_string(line[:place])) - 1 for place in places]
        head = self._head(template)
        slices = [slice(start, end) for start, end in zip(places[::2], places[1::2], strict=True)]
        row: Row
        if len(slices) > SLOTS:
            row = (_CALL, partial(_sliced_record, head, slices), *_NONE)
        else:
            row = (len(slices), head, *slices, *_NONE[len(slices) :])
        return _Placed(template, spans, template.slots, row, escaped)

    def _per_line_record(self, template: Template, spans: Spans, number: int, line: str) -> str:
        template = self.miner.canonical(template)
        params = _params(template, spans, self.message(line))
        return f'{{"line": {number}, {self._head(template)}{", ".join(map(_string, params))}]}}\n'

    def _own_record(self, number: int, line: str) -> str:
        return self._per_line_record(*self._own.lines[number], number, line)

    def _head(self, template: Template) -> str:
        """The record's text after the line number, up to the parameters (as of this block)."""
        head = self._heads.get(template)
        if head is None:
            text = _string(template.text)
            head = f'"template_id": {template.id}, "template": {text}, "params": ['
            self._heads[template] = head
        return head


class _Placed(NamedTuple):
    """A shape's row, and the template state it was placed for."""

    template: Template
    spans: Spans
    slots: object  # the template's slots then: replaced whenever the template widens
    row: Row
    escaped: bool  # the row slices the line as JSON writes it

    def holds(self, template: Template, spans: Spans) -> bool:
        return self.template is template and self.spans == spans and self.slots is template.slots


class _OwnShapes:
    """Shapes in which a digit survives masking (`eth0`): a line's template depends on the
    digits masking keeps, so lines are assigned one by one, except that lines of a shape that
    agree on those digits are assigned once a block (the others count as assigned)."""

    def __init__(self, miner: TemplateMiner, message: Callable[[str], str]) -> None:
        self.miner = miner
        self.message = message
        self.kept: dict[bytes, Callable[[str], object]] = {}  # shape -> a line's kept digits
        self.lines: dict[int, Assigned] = {}  # this block's, by line number
        self.groups: dict[tuple[bytes, object], Assigned] = {}  # this block's

    def begin(self, counts: Counter[bytes]) -> set[bytes]:
        """Start a block of these distinct zeroed lines; return the known shapes among them."""
        self.lines.clear()
        self.groups.clear()
        if len(self.kept) >= _OWN_SHAPES:
            self.kept.clear()
        return set(self.kept.keys() & counts.keys())

    def found(self, form: bytes, line: str, number: int, assigned: Assigned) -> None:
        """Remember a shape just found to be one, from its line the miner has assigned."""
        self.kept[form] = _kept_digits(line, self.message(line))
        self.lines[number] = self.groups[form, self.kept[form](line)] = assigned

    def assign(self, form: bytes, line: str, number: int) -> None:
        """Assign a line of a shape known to be one (once a block for the digits it keeps)."""
        assigned = self.groups.get((form, self.kept[form](line)))
        if assigned is None:
            template, spans, _ = self.miner.resolve(self.message(line))
            assigned = self.groups[form, self.kept[form](line)] = (template, spans)
        else:
            assigned[0].count += 1
        self.lines[number] = assigned


def _whole(line: str) -> str:
    return line


def _indices(zeroed: list[bytes], form: bytes, start: int) -> Iterator[int]:
    """Where the zeroed line `form` comes again, from `start` on."""
    return compress(range(start, len(zeroed)), map(form.__eq__, islice(zeroed, start, None)))


def _params(template: Template, spans: Spans, message: str) -> list[str]:
    words = message.split()
    if spans:
        join_spans(words, spans)
    return template.extract(words)


def _sliced_record(head: str, slices: list[slice], number: int, line: str) -> str:
    params = [line[piece] for piece in slices]
    return f'{{"line": {number}, {head}"{_BETWEEN.join(params)}"]}}\n'


def _kept_digits(line: str, message: str) -> Callable[[str], object]:
    """A function giving the digits masking keeps in a line of this shape (`eth0`, not `42`).

    Masking looks at a word's shape, never at its digits: a digit is kept if changing it changes
    the word's mask, and in every line of the shape the same places are kept."""
    offset = len(line) - len(message)
    kept = []
    end = 0
    for word in message.split():
        start = message.find(word, end)
        end = start + len(word)
        masked = mask_word(word)
        if _DIGIT.search(masked):
            for digit in _DIGIT.finditer(word):
                i = digit.start()
                other = word[:i] + ("1" if word[i] == "0" else "0") + word[i + 1 :]
                if mask_word(other) != masked:
                    kept.append(offset + start + i)
    return itemgetter(*kept) if kept else _whole  # none found: each line on its own


def _places(message: str, params: list[str]) -> list[int] | None:
    """Start and end of each parameter in the message, or None where one is missing.

    Parameters are pieces of the message, in order. Where every digit of the message lies in a
    parameter, the first place a parameter's text occurs after the one before is its own: an
    earlier place would put a digit of it where the message has none, and a parameter without
    digits reads the same at either place in every line of the shape."""
    places: list[int] = []
    at = 0
    for param in params:
        start = message.find(param, at)
        if start < 0:
            return None
        at = start + len(param)
        places += (start, at)
    return places


def _records(first: int, lines: list[str], rows: Iterable[Row]) -> list[str]:
    """Each line's record: its shape's head and the line's slices at the shape's places.

    One comprehension for the whole block, with a branch per number of parameters: a function
    call per line would cost more than the formatting itself."""
    return [
        f'{{"line": {n}, {h}"{s[a]}", "{s[b]}", "{s[c]}"]}}\n'
        if k == 3
        else f'{{"line": {n}, {h}"{s[a]}"]}}\n'
        if k == 1
        else f'{{"line": {n}, {h}"{s[a]}", "{s[b]}"]}}\n'
        if k == 2
        else f'{{"line": {n}, {h}"{s[a]}", "{s[b]}", "{s[c]}", "{s[d]}"]}}\n'
        if k == 4
        else f'{{"line": {n}, {h}"{s[a]}", "{s[b]}", "{s[c]}", "{s[d]}", "{s[e]}", "{s[f]}"]}}\n'
        if k == 6
        else f'{{"line": {n}, {h}"{s[a]}", "{s[b]}", "{s[c]}", "{s[d]}", "{s[e]}"]}}\n'
        if k == 5
        else f'{{"line": {n}, {h}]}}\n'
        if k == 0
        else h(n, s)
        for n, s, (k, h, a, b, c, d, e, f) in zip(count(first), lines, rows)
    ]
