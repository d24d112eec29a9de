"""Prometheus, read through its HTTP API (the poller's `PrometheusReader`)."""

from fleetops.adapters.prometheus.client import PrometheusClient

__all__ = ["PrometheusClient"]
