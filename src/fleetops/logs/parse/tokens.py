"""Turn a log message into the tokens a template is matched on.

A message is split on whitespace into words and each word is masked: the parts of it that are
plainly variable become `<*>` while its structure stays, so `(uid=0)` becomes `(uid=<*>)`,
`LOGIN(uid=0)` stays distinct from it, `rhost=zummit.com` becomes `rhost=<*>` and `user=root`
keeps its value. What counts as variable is decided by shape only, never by a system's words:

- anything with digits: numbers, IPs and ports, hex, UUIDs, ids such as `node-7` or
  `blk_-160899`, versions, times; in a word with structure (`batch:31`, `CPU#0`, `core.2275`)
  only the parts that hold digits. A name with a single digit (`tty2`, `eth0`, `jk2_init`) is a
  name, not a value;
- paths (POSIX and Windows) and URLs, domain names (`zummit.com`,
  `adsl-63-197-98-106.dsl.pacbell.net`), and host names with a port (`api.example.cn:443`);
- values separated only by punctuation are one value (`10.0.0.1,10.0.0.2`, `/10.0.0.1:50010`).

Then runs of whole-word variables collapse into one (`delete <*> <*> <*>` is `delete <*>`), and a
date written across words (`Fri Jul  1 07:57:30 2005`) is one variable, so the token count does
not depend on how many values a message happens to list. A quoted value of several words after
`key=` is one variable for the same reason.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

WILDCARD = "<*>"

# Characters that give a word its structure: key=value, brackets, quotes, list separators.
_PIECES = re.compile(r"([=()\[\]{}\"'<>,;])")
# Inside a piece that holds a digit, these separate names from values (`batch:31`, `core.2275`).
_SUBPIECES = re.compile(r"([.#:*!?$&|@])")
_NAME = re.compile(r"^[A-Za-z]{2,}\d(?:_?[A-Za-z]+)?$")
_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"[-+]?\d(?:[\d.:,-]*\d)?")
_URL = re.compile(r"^([\[(\"'{<]*)[A-Za-z][\w+.-]*://\S*?([\])\"'}>,;]*)$")
_PATH = re.compile(r"^(?:[~.]{0,2}/[^/]*/|[\w.~-]+/[\w.~-]*/)\S*$")
# Windows paths: rooted at a drive or a share, or at least two levels deep.
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:\\|\\\\|[\w.~$-]*\\[^\\]*\\)")
# host:port, also host/ip:port (`api.example.cn:443`, `a.b.example.com/10.0.0.1:8020`), but not
# a source line (`Foo.java:123`).
_HOST_PORT = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.([A-Za-z]+)(?:/[\d.]+)?:\d+$")
_SOURCE_FILES = frozenset("java scala kt py c cc cpp h go rs js ts rb cs php".split())
_HEXLIST = re.compile(r"^[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,}$")
_DOMAIN = re.compile(
    r"^[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\."
    r"(?:(?:com|net|org|edu|gov|ac|co)\.[a-z]{2}|com|net|org|edu|gov|mil|info|biz|local|internal)"
    r"(?::\d+)?([.:]?)$",
    re.IGNORECASE,
)
_RUN_IN_WORD = re.compile(r"(?:(?<![\w*>.-])/)?<\*>(?:[,;/|:.]<\*>)*")
_QUOTE_OPEN = re.compile(r'^([^"\s]*=")[^"]*$')
_QUOTE_CLOSE = re.compile(r'^[^"]*("[,;)\]}]*)$')
_QUOTE_WORDS = 16  # a longer "value" is more likely a stray quote than one value
_MONTHS = frozenset("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
_DATE_WORDS = _MONTHS | frozenset(
    "Mon Tue Wed Thu Fri Sat Sun UTC GMT PST PDT MST MDT CST CDT EST EDT CET CEST".split()
)

K = TypeVar("K")
V = TypeVar("V")


def mask_word(word: str) -> str:
    """Mask the variable parts of one whitespace-free word."""
    if word == WILDCARD or _NUMBER.fullmatch(word):  # the commonest value: a number, IP, time
        return WILDCARD
    if url := _URL.match(word):
        return url.group(1) + WILDCARD + url.group(2)
    parts = _PIECES.split(word)
    for i in range(0, len(parts), 2):  # even indices are pieces, odd ones the separators
        if parts[i]:
            parts[i] = _mask_piece(parts[i])
    masked = "".join(parts)
    if WILDCARD in masked:  # values separated by punctuation, or a leading slash, are one value
        masked = _RUN_IN_WORD.sub(WILDCARD, masked)
    return masked


def _mask_piece(piece: str) -> str:
    if ("/" in piece and _PATH.match(piece)) or ("\\" in piece and _WINDOWS_PATH.match(piece)):
        return WILDCARD + (":" if piece.endswith(":") else "")
    if "." in piece and (domain := _DOMAIN.match(piece)):
        return WILDCARD + domain.group(1)
    if not _DIGIT.search(piece):
        return piece
    if _HEXLIST.match(piece):
        return WILDCARD
    if ":" in piece and (host := _HOST_PORT.match(piece)) and host.group(1) not in _SOURCE_FILES:
        return WILDCARD
    subs = _SUBPIECES.split(piece)
    for i in range(0, len(subs), 2):
        sub = subs[i]
        if sub and _DIGIT.search(sub) and not _NAME.match(sub):
            subs[i] = WILDCARD
    return "".join(subs)


def collapse(tokens: list[str]) -> tuple[list[str], list[tuple[int, int]]]:
    """Merge runs of whole-token variables (a date's words among them) into one token.

    Returns the tokens and the (start, end) word spans that were merged, so that the raw words
    can be merged the same way (`join_spans`)."""
    quoted = _quoted_values(tokens)
    if WILDCARD not in tokens and not quoted:
        return tokens, []
    wild = [t == WILDCARD for t in tokens]
    if not _MONTHS.isdisjoint(tokens):
        _mark_dates(tokens, wild)
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    i, n = 0, len(tokens)
    while i < n:
        j = i + 1
        if i in quoted:
            j, token = quoted[i]
            spans.append((i, j))
            out.append(token)
        elif wild[i]:
            while j < n and wild[j]:
                j += 1
            if j - i > 1:
                spans.append((i, j))
            out.append(WILDCARD)
        else:
            out.append(tokens[i])
        i = j
    return out, spans


def _quoted_values(tokens: list[str]) -> dict[int, tuple[int, str]]:
    """Quoted values of several words after `key=` (`tag="View Lock",`): one variable each, so
    that the number of words in a value does not make another template. By start: (end, token)."""
    found: dict[int, tuple[int, str]] = {}
    i, n = 0, len(tokens)
    while i < n:
        opener = _QUOTE_OPEN.match(tokens[i])
        if opener:
            for j in range(i + 1, min(n, i + _QUOTE_WORDS)):
                if '"' in tokens[j]:
                    closer = _QUOTE_CLOSE.match(tokens[j])
                    if closer:
                        found[i] = (j + 1, f"{opener.group(1)}{WILDCARD}{closer.group(1)}")
                        i = j
                    break
        i += 1
    return found


def _mark_dates(tokens: list[str], wild: list[bool]) -> None:
    """A run of date words and variables that names a month is one date."""
    i, n = 0, len(tokens)
    while i < n:
        j = i
        while j < n and (wild[j] or tokens[j] in _DATE_WORDS):
            j += 1
        run = range(i, j)
        if any(wild[k] for k in run) and any(tokens[k] in _MONTHS for k in run):
            for k in run:
                wild[k] = True
        i = j + 1


def join_spans(words: list[str], spans: list[tuple[int, int]]) -> list[str]:
    """Merge raw words over the spans `collapse` merged their tokens (in place)."""
    for start, end in reversed(spans):
        words[start:end] = [" ".join(words[start:end])]
    return words


def tokenize(message: str) -> list[str]:
    """Split a message into masked tokens (uncached; the miner keeps its own caches)."""
    return collapse([mask_word(w) for w in message.split()])[0]


class Bounded(Generic[K, V]):
    """A bounded map in two generations: a hit in the older one moves the entry forward, and
    when the newer one fills, the older one is dropped. Near-LRU at a dict lookup's cost."""

    def __init__(self, size: int) -> None:
        self.limit = max(1, size // 2)
        self.hot: dict[K, V] = {}
        self.cold: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """The value for `key`, from either generation."""
        value = self.hot.get(key)
        if value is None:
            value = self.cold.get(key)
            if value is not None:
                self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Store a value in the newer generation, ageing the older one out when it is full."""
        if len(self.hot) >= self.limit:
            self.cold = self.hot
            self.hot = {}
        self.hot[key] = value

    def __len__(self) -> int:
        return len(self.hot) + len(self.cold)
