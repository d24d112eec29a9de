"""Streaming template mining: one pass, bounded caches, stable template ids, no per-source tuning.

A message is masked into tokens (see `tokens`). The exact masked sequence is looked up first: in a
stream most messages repeat a shape already seen, and for them that lookup is the whole cost.
A new sequence is compared with the templates of the same token count. Position by position a
difference is:

- a *fit* when the template already has a variable there that the token fits (`rhost=<*>` takes
  `rhost=zummit.com`);
- *soft* when one side is a variable, or an empty value in brackets or after `=`, where the other
  has a constant of the same structure (`()` against `(<*>)`, `tty=NODEVssh` against `tty=<*>`),
  when two size units differ after a number (`KB` against `MB`), or when two words differ
  right after `user` (`for user news` against `for user root`: accounts are open-ended);
- *hard* when two constants differ (`VM Started` against `VM Paused`, `user=root` against
  `user=guest`): different words usually mean a different event.

A message joins the most specific template that shares a constant with it, has no hard difference
and at most one soft one (units aside), widening it; otherwise it starts a new template. A
position where siblings keep differing by one constant is taken to be a variable after `variants`
distinct constants (a user name, a program), so high-cardinality words cannot grow the template
set without bound, unless that would leave the template more values than words. The templates
made for the earlier values then merge into the oldest: it keeps its id, theirs become its
aliases (`aliases`, `Template.alias_of`), and the shapes that led to them lead to it.

Ids are stable: a template keeps its id when it widens or absorbs others, a message shape once
assigned keeps its template (or the one that template merged into), and `restore` puts back
stored templates under their ids.

Masking decides by the shape of a word, never by which digits it holds, so two messages that
differ only in their digits get the same tokens, unless a digit survives masking (`eth0`). The
miner therefore also remembers messages with their digits zeroed: a stream's next block id,
port or task number then costs one lookup instead of masking its words again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from operator import itemgetter, ne
from typing import NamedTuple, TypeVar, cast

from fleetops.logs.parse.tokens import (
    WILDCARD,
    Bounded,
    collapse,
    join_spans,
    mask_word,
    tokenize,
)

__all__ = ["WILDCARD", "Match", "Template", "TemplateMiner", "tokenize"]

K = TypeVar("K")
Slot = tuple[int, str | None, str]
Key = tuple[str | None, ...]  # masked words; None where a word is not in the mask cache yet
Extract = Callable[[list[str]], list[str]]
Spans = list[tuple[int, int]]  # runs of words that one variable stands for

_ZERO = bytes.maketrans(b"123456789", b"000000000")
_ASCII_DIGIT = re.compile("[0-9]")
_DIGITS: tuple[Template, Spans] = cast("tuple[Template, Spans]", ())  # marks such messages

# Words after which a log names an account, and keys whose value is one: two names there are
# one event's variable (`for user news`, `user=root`).
_NAMES = frozenset({"user", "User", "USER"})
_ACCOUNT_KEYS = frozenset({"user=", "ruser=", "username=", "logname=", "acct="})
_UNITS = frozenset(
    "B b KB kB K k MB M GB G TB T PB KiB MiB GiB TiB bytes ns us µs ms s sec secs m min h".split()
)
_OPEN = frozenset("([{\"'=:")  # a value starts after these...
_CLOSE = frozenset(")]}\"',;:.")  # ...and ends before these
_HARD, _SOFT, _UNIT = 2, 1, 0


@dataclass(eq=False)
class Template:
    """A group of messages that share a shape; `id` never changes once assigned."""

    id: int
    tokens: list[str]
    count: int = 0
    # (position, literal before the variable, literal after it) for each token holding one;
    # a None "before" marks a token with several variables, matched with a regular expression.
    # Replaced, never mutated, when the template widens.
    slots: list[Slot] = field(default_factory=list, repr=False)
    extract: Extract = field(default=list, repr=False)
    variants: dict[int, int] = field(default_factory=dict, repr=False)
    loose: int = field(default=0, repr=False)  # tokens holding a variable
    alias_of: Template | None = field(default=None, repr=False)  # set when merged into another

    def __post_init__(self) -> None:
        self.refresh()

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def refresh(self) -> None:
        """Recompute where the variables are (after creation or widening)."""
        slots: list[Slot] = []
        for i, token in enumerate(self.tokens):
            n = token.count(WILDCARD)
            if n == 1:
                before, _, after = token.partition(WILDCARD)
                slots.append((i, before, after))
            elif n > 1:
                slots.append((i, None, token))
        self.slots = slots
        self.extract = _extractor(slots)
        self.loose = len(slots)


class Match(NamedTuple):
    """The template a message was assigned to, and the message's values at its variables."""

    template: Template
    params: list[str]


class TemplateMiner:
    """Groups messages into templates as they stream in."""

    def __init__(
        self, *, cache_size: int = 100_000, word_cache_size: int = 100_000, variants: int = 6
    ) -> None:
        self.templates: list[Template] = []
        self.aliases: dict[int, int] = {}  # merged template id -> the id it merged into
        self.variants = variants
        self._by_length: dict[int, list[Template]] = {}
        self._masks: Bounded[str, str] = Bounded(word_cache_size)  # word -> masked word
        # words holding digits whose mask does not (`blk_<*>`), by the word with digits zeroed,
        # so a new block id or port is masked by a lookup
        self._zeroed_masks: Bounded[bytes, str] = Bounded(word_cache_size)
        self._shapes: Bounded[Key, Template] = Bounded(cache_size)
        # masked sequences that collapse (runs of variables): template and word spans to merge
        self._plans: Bounded[Key, tuple[Template, Spans]] = Bounded(cache_size)
        # messages with their digits zeroed: template and spans, or _DIGITS where a digit
        # survives masking (the message's own digits decide its tokens)
        self._messages: Bounded[bytes, tuple[Template, Spans]] = Bounded(cache_size)
        self._next_id = 1

    def add(self, message: str) -> Match:
        """Assign a message to a template (creating or widening one) and return its parameters."""
        template, spans = self._assign(message)
        words = message.split()
        if spans:
            join_spans(words, spans)
        return Match(template, template.extract(words))

    def assign(self, message: str) -> Template:
        """Assign a message to a template as `add` does, without extracting its parameters."""
        found = self._messages.hot.get(message.encode("utf-8", "surrogatepass").translate(_ZERO))
        if found:  # the common case, inline: a shape seen lately (not _DIGITS, which is empty)
            found[0].count += 1
            return found[0]
        return self._assign(message)[0]

    def resolve(self, message: str) -> tuple[Template, Spans, bool]:
        """Assign a message as `assign` does; also return the runs of its words that one variable
        stands for (the miner's own list: do not change it), and whether every message that
        differs from it only in its digits resolves the same (not so where a digit survives
        masking: `eth0` against `eth1`)."""
        template, spans = self._assign(message)
        zeroed = message.encode("utf-8", "surrogatepass").translate(_ZERO)
        return template, spans, self._messages.get(zeroed) is not _DIGITS

    def restore(self, template_id: int, text: str, count: int = 0) -> Template:
        """Put back a template stored earlier, keeping its id (ids are stable across restarts)."""
        tokens = collapse(text.split())[0]
        template = Template(id=template_id, tokens=tokens, count=count)
        self._add_template(template)
        self._shapes.put(tuple(tokens), template)
        self._next_id = max(self._next_id, template_id + 1)
        return template

    def canonical(self, template: Template) -> Template:
        """The template a possibly merged one now lives in (itself when never merged)."""
        while template.alias_of is not None:
            template = template.alias_of
        return template

    def _assign(self, message: str) -> tuple[Template, Spans]:
        zeroed = message.encode("utf-8", "surrogatepass").translate(_ZERO)
        found = self._messages.hot.get(zeroed)
        if found is None:
            found = self._messages.get(zeroed)
        if found is None or found is _DIGITS:
            words = message.split()
            key = tuple(map(self._masks.hot.get, words))
            template = self._shapes.hot.get(key)
            resolved: tuple[Template, Spans]
            if template is not None:
                resolved = (template, [])
            else:
                key, resolved = self._lookup(key, words)
            if found is None:
                digits = _ASCII_DIGIT.search("".join(cast(tuple[str, ...], key)))
                self._messages.put(zeroed, _DIGITS if digits else resolved)
            found = resolved
        found[0].count += 1
        return found

    def _lookup(self, key: Key, words: list[str]) -> tuple[Key, tuple[Template, Spans]]:
        """Mask unseen words, merge runs of variables, place the shape; the full key with it."""
        if None in key:
            key = tuple(
                [k if k is not None else self._mask(w) for k, w in zip(key, words, strict=True)]
            )
        tokens = cast(list[str], list(key))
        template = self._shapes.get(key)
        if template is not None:
            return key, (template, [])
        plan = self._plans.get(key)
        if plan is None:
            merged, spans = collapse(tokens)
            if not spans:
                template = self._place(tokens)
                self._shapes.put(key, template)
                return key, (template, [])
            merged_key = tuple(merged)
            template = self._shapes.get(merged_key) or self._place(merged)
            self._shapes.put(merged_key, template)
            plan = (template, spans)
            self._plans.put(key, plan)
        return key, plan

    def _mask(self, word: str) -> str:
        masked = self._masks.get(word)  # the older generation may still have it
        if masked is None:
            if _ASCII_DIGIT.search(word) is None:
                masked = mask_word(word)
            else:
                zeroed = word.encode("utf-8", "surrogatepass").translate(_ZERO)
                masked = self._zeroed_masks.get(zeroed)
                if masked is None:
                    masked = mask_word(word)
                    if _ASCII_DIGIT.search(masked) is None:  # other digits would mask the same
                        self._zeroed_masks.put(zeroed, masked)
            self._masks.put(word, masked)
        return masked

    def _add_template(self, template: Template) -> None:
        self.templates.append(template)
        self._by_length.setdefault(len(template.tokens), []).append(template)

    def _place(self, tokens: list[str]) -> Template:
        """Find the template a new shape belongs to, widening it, or start a new one."""
        best: Template | None = None
        best_rank = (2, 0, 0)
        sibling: Template | None = None
        sibling_at = -1
        constants = sum(token != WILDCARD for token in tokens)
        # Differences that can be other than hard; beyond them (plus one hard and one soft) a
        # template cannot take the message, which the C-level count below rules out cheaply.
        loose = sum(WILDCARD in token or token in _UNITS for token in tokens) + 2
        for template in self._by_length.get(len(tokens), ()):
            if sum(map(ne, template.tokens, tokens)) > template.loose + loose:
                continue
            soft, exact, hard_at = _compare(template.tokens, tokens)
            if soft <= 1 and hard_at == -1 and (exact or not constants):
                rank = (soft, -exact, template.id)
                if rank < best_rank:
                    best, best_rank = template, rank
            elif soft == 0 and hard_at >= 0 and (sibling is None or template.id < sibling.id):
                sibling, sibling_at = template, hard_at
        if best is not None:
            _widen(best, tokens)
            return best
        if sibling is not None:
            seen = sibling.variants.get(sibling_at, 1) + 1
            if seen >= self.variants and _keeps_shape(sibling.tokens, sibling_at):
                sibling.variants.pop(sibling_at, None)
                _widen(sibling, tokens, force=sibling_at)
                self._absorb(sibling)
                return sibling
            sibling.variants[sibling_at] = seen
        template = Template(id=self._next_id, tokens=list(tokens))
        self._next_id += 1
        self._add_template(template)
        return template

    def _absorb(self, into: Template) -> None:
        """Merge into a widened template the younger ones it now covers (the values seen before
        the position proved variable): it keeps its id, theirs become aliases of it."""
        same = self._by_length[len(into.tokens)]
        merged = {
            t for t in same if t is not into and t.id > into.id and _covers(into.tokens, t.tokens)
        }
        if not merged:
            return
        for template in merged:
            _widen(into, template.tokens)
            into.count += template.count
            template.alias_of = into
            self.aliases[template.id] = into.id
        self._by_length[len(into.tokens)] = [t for t in same if t not in merged]
        self.templates = [t for t in self.templates if t not in merged]
        self._redirect(merged, into)

    def _redirect(self, merged: set[Template], into: Template) -> None:
        """Point every cached shape of a merged template at the one it merged into."""
        for shapes in (self._shapes.hot, self._shapes.cold):
            for key, template in shapes.items():
                if template in merged:
                    shapes[key] = into
        for plans in (self._plans.hot, self._plans.cold):
            _repoint(plans, merged, into)
        for messages in (self._messages.hot, self._messages.cold):
            _repoint(messages, merged, into)


def _repoint(plans: dict[K, tuple[Template, Spans]], merged: set[Template], into: Template) -> None:
    for key, plan in plans.items():
        if plan and plan[0] in merged:  # not _DIGITS, which is empty
            plans[key] = (into, plan[1])


def _keeps_shape(tokens: list[str], at: int) -> bool:
    """Whether a template keeps most of its words constant with one more variable at `at`:
    a short message of values (`JOB_CREATE <*>`) is not one event with a variable first word."""
    constants = sum(WILDCARD not in t for i, t in enumerate(tokens) if i != at)
    return 2 * constants >= len(tokens)


def _covers(ours: list[str], theirs: list[str]) -> bool:
    """Whether a template takes another's tokens with no hard difference (at most one soft)."""
    soft, _, hard_at = _compare(ours, theirs)
    return hard_at == -1 and soft <= 1


def _extractor(slots: list[Slot]) -> Extract:
    """The cheapest function that pulls a template's parameters out of a message's words."""
    if not slots:
        return lambda words: []
    if any(before is None for _, before, _ in slots):
        return partial(_params, slots)
    if any(before or after for _, before, after in slots):
        # A word's literal text around its variable is the template's: masking keeps it.
        cuts = [(i, len(before or ""), -len(after) or None) for i, before, after in slots]
        return partial(_cut, cuts)
    if len(slots) == 1:
        i = slots[0][0]
        return lambda words: [words[i]]
    get = itemgetter(*(i for i, _, _ in slots))
    return lambda words: list(get(words))


def _cut(cuts: list[tuple[int, int, int | None]], words: list[str]) -> list[str]:
    return [words[i][start:end] for i, start, end in cuts]


def _params(slots: list[Slot], words: list[str]) -> list[str]:
    out: list[str] = []
    for i, before, after in slots:
        word = words[i]
        if before is None:
            found = _pattern(after).match(word)
            out.extend(found.groups() if found else (word,))
        elif word.startswith(before) and word.endswith(after):
            out.append(word[len(before) : len(word) - len(after)])
        else:
            out.append(word)
    return out


def _compare(ours: list[str], theirs: list[str]) -> tuple[int, int, int]:
    """Count soft differences and exact constants; give the one hard difference's position.

    The position is -1 when there is none and -2 when there is more than one."""
    soft = exact = 0
    hard_at = -1
    previous = ""
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a == b:
            if a != WILDCARD:
                exact += 1
        elif a == WILDCARD:
            pass
        elif WILDCARD in a and (found := _pattern(a).match(b)):
            if not any(found.groups()):  # an empty value where the template has one
                soft += 1
        else:
            kind = _difference(a, b, previous)
            if kind == _HARD:
                if hard_at != -1:
                    return soft, exact, -2
                hard_at = i
            elif kind == _SOFT:
                soft += 1
        previous = a
    return soft, exact, hard_at


def _split(a: str, b: str) -> tuple[str, str, str, str]:
    """Common structural prefix and suffix of two tokens: (prefix, suffix, a's middle, b's)."""
    n = 0
    limit = min(len(a), len(b))
    while n < limit and a[n] == b[n]:
        n += 1
    while n > 0 and a[n - 1] not in _OPEN:
        n -= 1
    m = 0
    limit -= n
    while m < limit and a[-1 - m] == b[-1 - m]:
        m += 1
    while m > 0 and a[-m] not in _CLOSE:
        m -= 1
    return a[:n], a[len(a) - m :], a[n : len(a) - m], b[n : len(b) - m]


def _difference(a: str, b: str, previous: str) -> int:
    prefix, suffix, x, y = _split(a, b)
    if x in _UNITS and y in _UNITS and previous.endswith(WILDCARD):
        return _UNIT
    if x == WILDCARD or y == WILDCARD or previous in _NAMES:
        return _SOFT
    if prefix.endswith("=") and x and y and _key(prefix) in _ACCOUNT_KEYS:
        return _SOFT
    if not x or not y:  # an empty value: soft only where a value is clearly delimited
        enclosed = prefix[-1:] in _OPEN and (not suffix or suffix[0] in _CLOSE)
        return _SOFT if enclosed else _HARD
    return _HARD


def _key(prefix: str) -> str:
    """The `key=` a token's common prefix ends with, lower-cased (`(user=` gives `user=`)."""
    start = max(prefix.rfind(c, 0, len(prefix) - 1) for c in " ([{,;\"'")
    return prefix[start + 1 :].lower()


def _widen(template: Template, tokens: list[str], force: int = -1) -> None:
    """Make the template general enough to cover `tokens` (its id stays)."""
    changed = False
    for i, (a, b) in enumerate(zip(template.tokens, tokens, strict=True)):
        if a == b or a == WILDCARD or (WILDCARD in a and _pattern(a).match(b)):
            if i != force:
                continue
        prefix, suffix, _, _ = _split(a, b)
        template.tokens[i] = f"{prefix}{WILDCARD}{suffix}"
        changed = True
    if changed:
        template.refresh()


@lru_cache(maxsize=4096)
def _pattern(token: str) -> re.Pattern[str]:
    """A regular expression a token with variables matches (cached; template tokens are few)."""
    literal = (re.escape(part) for part in token.split(WILDCARD))
    return re.compile("^" + "(.*?)".join(literal) + "$", re.DOTALL)
