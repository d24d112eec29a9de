"""Append-only, hash-chained audit log of every mutation and every refused call."""
