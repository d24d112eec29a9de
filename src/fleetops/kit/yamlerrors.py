"""Turn PyYAML errors into a line number and a sentence, the same way for every file we read."""

from __future__ import annotations

import yaml


def error_line(exc: yaml.YAMLError, text: str) -> int | None:
    """The 1-based line a YAML error points at, if it points anywhere."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        # The end of the stream sits after the last newline; name the last real line instead.
        return min(mark.line + 1, max(1, len(text.splitlines()))) if mark else None
    position = getattr(exc, "position", None)  # ReaderError: a character YAML does not allow
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else None


def error_problem(exc: yaml.YAMLError) -> str:
    """What is wrong, in words."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f"invalid YAML: character #x{exc.character:04x} is not allowed"
    if isinstance(exc, yaml.MarkedYAMLError):
        context = f"{exc.context}: " if exc.context else ""
        return f"invalid YAML: {context}{exc.problem}"
    return f"invalid YAML: {exc}"
