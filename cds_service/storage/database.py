"""Engine and schema. The schema is migrated at start-up (storage/migrations); SQLite and PostgreSQL are tested.

`metadata` is the schema the migrations build (a test compares them): change both together."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from cds_service.storage.migrations import HEAD, current_revision, migrate
from cds_service.storage.sqlite_files import guard_sqlite_files

metadata = MetaData()

feedback = Table(
    "cds_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(200), nullable=False),
    Column("card_uuid", String(200), nullable=False),
    Column("outcome", String(20), nullable=False),
    # Normalised to UTC ISO-8601 so "Z" and "+00:00" spellings are the same feedback.
    Column("outcome_timestamp", String(40), nullable=False),
    Column("accepted_suggestions", Text, nullable=True),
    Column("override_reason_system", String(500), nullable=True),
    Column("override_reason_code", String(200), nullable=True),
    Column("override_reason_display", String(500), nullable=True),
    Column("override_comment", Text, nullable=True),
    Column("raw", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_card_outcome_time"),
)

# Items that could not be understood are kept too: nothing the EHR sends is lost.
feedback_rejected = Table(
    "cds_feedback_rejected",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(200), nullable=False),
    Column("problem", Text, nullable=False),
    Column("raw", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


audit = Table(
    "cds_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("service_id", String(200), nullable=False),
    Column("hook", String(100), nullable=True),
    Column("hook_instance", String(200), nullable=True),
    Column("issuer", String(500), nullable=True),
    Column("tenant", String(200), nullable=True),
    Column("status", Integer, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("rule_versions", Text, nullable=False),
    Index("ix_cds_audit_hook_instance", "hook_instance"),
    Index("ix_cds_audit_received_at", "received_at"),
)

audit_card = Table(
    "cds_audit_card",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_id", Integer, ForeignKey("cds_audit.id"), nullable=False, index=True),
    Column("card_uuid", String(200), nullable=False, index=True),
    Column("indicator", String(20), nullable=False),
    Column("summary", String(500), nullable=False),
)


def storable(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL (JSON may: "\u0000"); it is kept as U+FFFD so the row is stored at all."""
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")


def fitted(column: Column[Any], value: str | None) -> str | None:
    """A text the column can hold: NUL replaced, cut to the column's length (PostgreSQL refuses longer values;
    a hostile hookInstance or service id must not make its call's audit fail)."""
    text = storable(value)
    length = getattr(column.type, "length", None)
    return text[:length] if text is not None and length else text


# Failures that mean "the database cannot take this now" (503: down, gone, locked, pool exhausted), as opposed
# to a bug or bad data (DataError, IntegrityError: 500, audited).
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError, OSError)


def create_database(url: str) -> Engine:
    """The engine, with the schema migrated to HEAD. A SQLite file is made here, at start-up, and only here: the
    running engine opens existing files only, so a deleted database is an error (503), not a new empty one."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    else:
        postgres = parsed.get_backend_name() == "postgresql"
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            pool_timeout=_POOL_TIMEOUT_SECONDS,
            connect_args=_POSTGRES_CONNECT_ARGS if postgres else {},
        )
    migrate(engine)
    return engine


# A database that does not answer fails the call in seconds (503), instead of holding it for the driver's
# defaults (no connect timeout; 30 s for a pooled connection).
_CONNECT_TIMEOUT_SECONDS = 3
_POOL_TIMEOUT_SECONDS = 5
# libpq: a connection whose server vanished (no reset, e.g. a dropped route) is found dead in ~20 s by TCP
# keepalives and unacknowledged writes, instead of after the kernel's minutes.
_POSTGRES_CONNECT_ARGS = {
    "connect_timeout": _CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
}


def _sqlite_engine(parsed: URL) -> Engine:
    database = parsed.database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        engine = create_engine(parsed, pool_pre_ping=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    path = Path(database).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()
    existing_only = parsed.set(database=f"file:{quote(str(path))}").update_query_dict({"mode": "rw", "uri": "true"})
    engine = create_engine(existing_only, pool_pre_ping=True, pool_timeout=_POOL_TIMEOUT_SECONDS)
    event.listen(engine, "connect", _sqlite_pragmas)
    guard_sqlite_files(engine, path)
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL + synchronous=NORMAL: a commit is in the WAL before it returns, so it survives a killed
    # process; only an OS crash or power loss can drop the last commits (no fsync per call, which
    # would cost milliseconds on every hook call). Production uses PostgreSQL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def database_ready(engine: Engine) -> bool:
    """Reachable, and the schema at HEAD: an empty file or a half-restored database is not ready."""
    try:
        with engine.connect() as connection:
            return current_revision(connection) == HEAD
    except Exception:
        return False
