"""Versioned schema migrations (Alembic), run at start-up before the service answers.

Concurrent workers serialise on the database itself: PostgreSQL's advisory lock, SQLite's write lock
(`BEGIN IMMEDIATE`); the whole upgrade is one transaction on both. A database made by release 0.1.0
(tables from `create_all`, no `alembic_version`) is stamped at the baseline revision first. When the
database is already at HEAD, Alembic is not even imported (it costs ~0.5 s of cold start).

A schema change is a new file in `versions/` plus HEAD below; tests/test_migrations.py checks that the
revisions end at HEAD, that they build exactly `database.metadata`, and upgrades a 0.1.0 database with data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0002"
BASELINE = "0001"  # the schema of release 0.1.0
SCRIPT_LOCATION = "cds_service.storage:migrations"
_ADVISORY_LOCK = 7310447


def migrate(engine: Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        elif engine.dialect.name == "sqlite":
            # pysqlite would run DDL outside a transaction; this makes the upgrade atomic and takes the write
            # lock, so a second worker waits (busy_timeout) and then finds the schema at HEAD.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        if current_revision(connection) != HEAD:
            _upgrade(connection)
        connection.commit()


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = alembic_config(connection)
    if current_revision(connection) is None and inspect(connection).has_table("cds_audit"):
        command.stamp(config, BASELINE)  # made by release 0.1.0's create_all
    command.upgrade(config, "head")
