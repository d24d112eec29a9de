"""Diagnosis from logs: ingestion, template mining, aggregation, detectors."""
