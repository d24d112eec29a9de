"""The ways in besides the JSON push: Prometheus remote write and StatsD lines."""
