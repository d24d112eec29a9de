"""Resource right-sizing: requests against usage, recommenders replayed on traces."""
