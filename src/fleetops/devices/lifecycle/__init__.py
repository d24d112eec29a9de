"""The device repair loop: isolation and reintegration as changes, tickets driving repair."""
