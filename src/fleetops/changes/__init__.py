"""Change management: operations, workflows, change requests, approvals and the durable engine."""
