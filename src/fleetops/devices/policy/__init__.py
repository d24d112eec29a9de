"""Health policy: turn open host findings into suspicion and isolation, within safety limits."""
