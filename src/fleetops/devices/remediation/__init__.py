"""Remediation rules: findings and predictions to changes, in dry run or for real."""
