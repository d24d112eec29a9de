"""fleetops: every action on a fleet is an audited, guarded change."""

__version__ = "0.1.0"
