"""Repair metrics: how fast devices are repaired, where repairs concentrate, how often a repair does
not hold, the ticket load, and how much capacity is out of service, now and over time."""
