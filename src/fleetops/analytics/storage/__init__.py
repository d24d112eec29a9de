"""Storage analysis: what a namespace holds (HDFS fsimage, listings, scans) and what it wastes."""
