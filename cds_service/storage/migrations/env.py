"""Alembic environment: migrations run on the connection `migrate()` hands over, inside its lock and transaction."""

from __future__ import annotations

from alembic import context

from cds_service.storage.database import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
