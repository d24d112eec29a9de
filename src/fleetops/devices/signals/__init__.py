"""Hardware health signals from tools other than the logs, reported as host findings."""
