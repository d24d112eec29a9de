"""Anomaly detection on metric series, and the Numenta Anomaly Benchmark that measures it."""
