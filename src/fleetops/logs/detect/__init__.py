"""Detectors over the aggregation's recent windows; they propose findings."""
