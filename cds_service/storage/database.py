"""Engine and schema. Tables are created at start-up; both SQLite and PostgreSQL are tested."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

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


def create_database(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    _create_tables(engine)
    return engine


def _create_tables(engine: Engine) -> None:
    """Several workers start at once: on PostgreSQL an advisory lock serialises the CREATEs; on SQLite a
    second process losing the race finds the tables there on its retry."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(7310447)"))
            metadata.create_all(connection)
        return
    for attempt in range(5):
        try:
            metadata.create_all(engine)
            return
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL + synchronous=NORMAL: a commit is in the WAL before it returns, so it survives a killed
    # process; only an OS crash or power loss can drop the last commits (no fsync per call, which
    # would cost milliseconds on every hook call). Production uses PostgreSQL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
