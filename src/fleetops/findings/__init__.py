"""Findings: the one place detectors report to; dedup, severity, evidence, lifecycle."""
