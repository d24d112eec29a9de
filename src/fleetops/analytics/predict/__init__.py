"""Disk failure prediction from daily SMART snapshots: read, featurise, learn, rank, evaluate."""
