"""Log diagnosis: the rollup series and matrices the charts draw, read back for a time range."""
