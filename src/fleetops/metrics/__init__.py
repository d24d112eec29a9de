"""Named metrics a site's own systems push (business and platform throughput), kept as rollups."""
