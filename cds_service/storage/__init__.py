"""Durable records (feedback) in SQLAlchemy: SQLite by default, PostgreSQL by URL."""
