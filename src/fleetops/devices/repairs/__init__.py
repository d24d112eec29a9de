"""Repair tickets and the repair ladder."""
