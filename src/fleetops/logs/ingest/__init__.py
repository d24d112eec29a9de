"""Log ingestion: HTTP (native, Fluent Bit, Vector, Loki push), syslog, and the file agent."""
