"""Device asset management: each host's hardware lifecycle, moved only by named rules."""
