"""Delivery inspection: hardware probes, per-model baselines and verdicts."""
