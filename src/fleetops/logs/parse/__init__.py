"""Streaming log template mining."""
