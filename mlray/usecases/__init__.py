"""Shipped use cases (data generators and their schemas)."""
