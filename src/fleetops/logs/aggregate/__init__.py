"""Stream aggregation: lifecycle, transfer and error-signature events → windows and rollups."""
