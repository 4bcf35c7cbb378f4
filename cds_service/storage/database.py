"""Engine and schema. Tables are created at start-up; both SQLite and PostgreSQL are tested."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
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


def create_database(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL + synchronous=FULL: a committed feedback item survives a killed process.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def database_reachable(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
