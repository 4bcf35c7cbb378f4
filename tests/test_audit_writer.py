"""The audit writer thread writes its rows through the DB-API cursor with INSERTs compiled once: the rows
must be exactly those SQLAlchemy Core writes, on SQLite and on PostgreSQL, and a connection that the
database dropped between two batches must not lose a record."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from cds_service.storage.audit import AuditCard, AuditRecord, AuditWriter, write_audit_batch
from cds_service.storage.database import audit, audit_card, create_database

RECEIVED = datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)


def record(instance: str, cards: int) -> AuditRecord:
    return AuditRecord(
        service_id="mas-screen",
        hook="patient-view",
        hook_instance=instance,
        issuer="https://ehr.example.org",
        tenant=None,
        status=200,
        outcome="ok; identity mismatch: 1 resource 100% dropped",  # a '%' must survive pyformat drivers
        latency_ms=1.234,
        rule_versions={"trial": "2", "eular2016": "1"},
        cards=tuple(AuditCard(f"{instance}-card-{n}", "warning", f"summary {n} ≥ 500 ng/mL") for n in range(cards)),
        received_at=RECEIVED,
    )


def stored(engine: Engine) -> list[dict[str, Any]]:
    """Every audit row with its cards, without the database's own ids."""
    with engine.connect() as connection:
        records = [dict(r._mapping) for r in connection.execute(select(audit).order_by(audit.c.id))]
        cards = [dict(r._mapping) for r in connection.execute(select(audit_card).order_by(audit_card.c.id))]
    for row in records:
        row["cards"] = [
            {k: v for k, v in card.items() if k not in ("id", "audit_id")}
            for card in cards
            if card["audit_id"] == row["id"]
        ]
        del row["id"]
    return records


def write_through_writer(engine: Engine, records: list[AuditRecord]) -> None:
    writer = AuditWriter(engine)

    async def write_all() -> None:
        for item in records:
            await writer.write(item)

    try:
        asyncio.run(write_all())
    finally:
        writer.close()


def test_the_writer_stores_what_sqlalchemy_core_stores(database_url: str, tmp_path: Any) -> None:
    batch = [record("a", 0), record("b", 1), record("c", 3)]
    engine = create_database(database_url)
    try:
        write_audit_batch(engine, batch)
        expected = stored(engine)
        with engine.begin() as connection:
            connection.execute(audit_card.delete())
            connection.execute(audit.delete())
        write_through_writer(engine, batch)
        assert stored(engine) == expected
        assert [len(row["cards"]) for row in expected] == [0, 1, 3]
        assert expected[0]["received_at"].replace(tzinfo=UTC) == RECEIVED  # SQLite keeps no zone
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_connection_dropped_between_batches_loses_no_record(postgres_url: str) -> None:
    # A name of our own, so that only this engine's sessions are ended (the database is shared).
    name = f"cds-audit-test-{uuid.uuid4().hex[:12]}"
    engine = create_database(f"{postgres_url}&application_name={name}")
    writer = AuditWriter(engine)

    async def scenario() -> None:
        await writer.write(record("before", 1))
        # The database ends the writer's session (a restart or an idle timeout would do the same).
        with engine.begin() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).all()
            assert ended
        await writer.write(record("after", 1))

    try:
        asyncio.run(scenario())
    finally:
        writer.close()
    try:
        assert [row["hook_instance"] for row in stored(engine)] == ["before", "after"]
    finally:
        engine.dispose()
