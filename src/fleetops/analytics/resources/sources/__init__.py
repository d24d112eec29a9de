"""Usage readers: each source family loads one canonical DuckDB table, `{name}_usage`."""
