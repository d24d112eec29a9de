"""Data-driven operations: analyses over the fleet's own data (storage, resources, forecasts)."""
