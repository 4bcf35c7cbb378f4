"""Structured logs and Prometheus metrics. Neither ever carries a token or patient data."""
