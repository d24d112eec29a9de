"""Sizes as people read them, without loading anything (the CLI imports this at start-up)."""

from __future__ import annotations


def binary_bytes(value: int | float | None) -> str:
    """Bytes in binary units, as `hdfs dfs -du -h` and `df -h` print them: '1.5 GiB'."""
    amount = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(amount) < 1024 or unit == "PiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")
