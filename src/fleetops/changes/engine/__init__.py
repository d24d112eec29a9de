"""The durable rolling engine: runs approved changes batch by batch under global guardrails."""
