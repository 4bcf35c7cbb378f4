"""Issue 12 item 8: versioned schema migrations. A database made by release 0.1.0 (create_all, no
alembic_version) is upgraded at start-up with its rows intact, on SQLite and PostgreSQL; the revisions
build exactly the schema the code uses; concurrent start-ups serialise; a database at HEAD costs no Alembic."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    inspect,
    select,
)

from cds_service.settings import PROJECT_ROOT
from cds_service.storage.database import audit, audit_card, create_database, feedback, feedback_rejected, metadata
from cds_service.storage.migrations import HEAD, alembic_config, current_revision

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _release_0_1_0_schema() -> MetaData:
    """The tables exactly as release 0.1.0 declared them (frozen here: never change this copy)."""
    old = MetaData()
    Table(
        "cds_feedback",
        old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("service_id", String(200), nullable=False),
        Column("card_uuid", String(200), nullable=False),
        Column("outcome", String(20), nullable=False),
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
    Table(
        "cds_feedback_rejected",
        old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("service_id", String(200), nullable=False),
        Column("problem", Text, nullable=False),
        Column("raw", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "cds_audit",
        old,
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
    Table(
        "cds_audit_card",
        old,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("audit_id", Integer, ForeignKey("cds_audit.id"), nullable=False, index=True),
        Column("card_uuid", String(200), nullable=False, index=True),
        Column("indicator", String(20), nullable=False),
        Column("summary", String(500), nullable=False),
    )
    return old


def _fill_release_0_1_0(database_url: str) -> None:
    engine = create_engine(database_url)
    _release_0_1_0_schema().create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            feedback.insert(),
            [
                {
                    "service_id": "mas-screen",
                    "card_uuid": f"card-{n}",
                    "outcome": "overridden",
                    "outcome_timestamp": "2026-03-10T12:00:00+00:00",
                    "raw": "{}",
                    "received_at": NOW,
                }
                for n in range(3)
            ],
        )
        connection.execute(
            feedback_rejected.insert(),
            {"service_id": "mas-screen", "problem": "p", "raw": "{}", "received_at": NOW},
        )
        audit_id = connection.execute(
            audit.insert().returning(audit.c.id),
            {
                "received_at": NOW,
                "service_id": "mas-screen",
                "hook": "patient-view",
                "hook_instance": "hook-old",
                "status": 200,
                "outcome": "ok",
                "latency_ms": 1.5,
                "rule_versions": "{}",
            },
        ).scalar_one()
        connection.execute(
            audit_card.insert(),
            {"audit_id": audit_id, "card_uuid": "card-0", "indicator": "warning", "summary": "s"},
        )
    engine.dispose()


def test_the_revisions_end_at_head_in_one_line() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [HEAD]
    chain = [revision.revision for revision in script.walk_revisions()]
    assert chain[-1] == "0001" and chain[0] == HEAD and len(chain) == len(set(chain))


def test_the_migrations_build_exactly_the_schema_the_code_uses(database_url: str) -> None:
    engine = create_database(database_url)
    try:
        with engine.connect() as connection:
            assert current_revision(connection) == HEAD
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_a_release_0_1_0_database_is_upgraded_with_its_data(database_url: str) -> None:
    _fill_release_0_1_0(database_url)
    engine = create_database(database_url)  # what start-up does
    try:
        with engine.connect() as connection:
            assert current_revision(connection) == HEAD
            assert connection.execute(select(func.count()).select_from(feedback)).scalar_one() == 3
            assert connection.execute(select(func.count()).select_from(feedback_rejected)).scalar_one() == 1
            assert connection.execute(select(audit.c.hook_instance)).scalars().all() == ["hook-old"]
            assert connection.execute(select(audit_card.c.card_uuid)).scalars().all() == ["card-0"]
            indexes = {index["name"] for index in inspect(connection).get_indexes("cds_audit")}
            assert {"ix_cds_audit_hook_instance", "ix_cds_audit_received_at"} <= indexes
        # the upgraded database takes new rows as before (the unique constraint survived)
        with engine.begin() as connection:
            connection.execute(
                feedback.insert(),
                {
                    "service_id": "mas-screen",
                    "card_uuid": "card-new",
                    "outcome": "overridden",
                    "outcome_timestamp": "2026-03-10T12:00:00+00:00",
                    "raw": "{}",
                    "received_at": NOW,
                },
            )
    finally:
        engine.dispose()
    create_database(database_url).dispose()  # a second start-up finds HEAD and changes nothing


def test_concurrent_start_ups_migrate_once(database_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            create_database(database_url).dispose()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == HEAD
    engine.dispose()


def test_a_start_up_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cds.sqlite3'}"
    create_database(url).dispose()
    program = (
        "import sys; from cds_service.storage.database import create_database; "
        f"create_database({url!r}).dispose(); print('alembic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
