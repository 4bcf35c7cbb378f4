"""Audit records: one per authenticated hook call (who, what, which rules, which cards, how long, outcome).

No token and no patient data: the card summary is the only clinical text, and it names lab values only.
Feedback links to the audit through the card uuid (cds_audit_card)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Dialect, Engine, Insert, PoolProxiedConnection, Table, insert, text

from cds_service.storage.database import audit, audit_card


@dataclass(frozen=True)
class AuditCard:
    uuid: str
    indicator: str
    summary: str


@dataclass(frozen=True)
class AuditRecord:
    service_id: str
    hook: str | None
    hook_instance: str | None
    issuer: str | None
    tenant: str | None
    status: int
    outcome: str
    latency_ms: float
    rule_versions: dict[str, str] = field(default_factory=dict)
    cards: tuple[AuditCard, ...] = ()
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def write_audit_batch(engine: Engine, records: list[AuditRecord]) -> None:
    """Commit `records` in one transaction (SQLAlchemy Core; the writer thread uses `_AuditSink`)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(_POSTGRES_ASYNC_COMMIT))
        for record in records:
            result = connection.execute(insert(audit).returning(audit.c.id), _record_values(record))
            audit_id = result.scalar_one()
            if record.cards:
                connection.execute(insert(audit_card), _card_values(audit_id, record))


# The commit returns once PostgreSQL has the records (durable if this service is killed); not waiting for
# PostgreSQL's own disk flush saves ~3 ms per call. Only a crash of the database server itself could drop
# the last fraction of a second of audit.
_POSTGRES_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"


def _record_values(record: AuditRecord) -> dict[str, Any]:
    return {
        "received_at": record.received_at,
        "service_id": record.service_id,
        "hook": record.hook,
        "hook_instance": record.hook_instance,
        "issuer": record.issuer,
        "tenant": record.tenant,
        "status": record.status,
        "outcome": record.outcome[:2000],
        "latency_ms": record.latency_ms,
        "rule_versions": json.dumps(record.rule_versions, sort_keys=True),
    }


def _card_values(audit_id: int, record: AuditRecord) -> list[dict[str, Any]]:
    return [
        {"audit_id": audit_id, "card_uuid": c.uuid, "indicator": c.indicator, "summary": c.summary}
        for c in record.cards
    ]


class _Statement:
    """An INSERT compiled once for the engine's dialect, with the dialect's own value conversions (e.g.
    SQLite's datetime text), to run on the DB-API cursor exactly as SQLAlchemy would run it."""

    def __init__(self, statement: Insert, table: Table, keys: Sequence[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ()) if dialect.positional else None
        converters = {key: table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys}
        self._converters = {key: convert for key, convert in converters.items() if convert is not None}

    def parameters(self, values: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        for key, convert in self._converters.items():
            values[key] = convert(values[key])
        return values if self._order is None else tuple(values[key] for key in self._order)


class _AuditSink:
    """The writer thread's own database connection and precompiled INSERTs: the same rows as
    `write_audit_batch`, without SQLAlchemy's per-statement work and pool checkout (with its ping) on every
    batch: one record costs 0.18 M instructions this way against 0.73 M through SQLAlchemy Core."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect
        record_keys = [column.name for column in audit.columns if column.name != "id"]
        self._record = _Statement(insert(audit).returning(audit.c.id), audit, record_keys, dialect)
        card_keys = ["audit_id", "card_uuid", "indicator", "summary"]
        self._card = _Statement(insert(audit_card), audit_card, card_keys, dialect)
        self._postgres = dialect.name == "postgresql"
        self._connection: PoolProxiedConnection | None = None

    def write(self, records: list[AuditRecord]) -> None:
        try:
            self._write(records, first_try=True)
        except _StaleConnectionError:
            self._write(records, first_try=False)  # nothing was written: a fresh connection, once

    def _write(self, records: list[AuditRecord], *, first_try: bool) -> None:
        connection = self._connection = self._connection or self._engine.raw_connection()
        cursor = connection.cursor()
        written = False
        try:
            if self._postgres:
                cursor.execute(_POSTGRES_ASYNC_COMMIT)
            for record in records:
                cursor.execute(self._record.sql, self._record.parameters(_record_values(record)))
                written = True
                row = cursor.fetchone()
                assert row is not None  # INSERT ... RETURNING id
                if record.cards:
                    rows: Any = [self._card.parameters(values) for values in _card_values(row[0], record)]
                    cursor.executemany(self._card.sql, rows)
            connection.commit()
        except Exception as error:
            dialect = self._engine.dialect
            stale = isinstance(error, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
                cast(Any, error), connection.dbapi_connection, cursor
            )
            self._discard(invalidate=stale)
            if stale and first_try and not written:
                raise _StaleConnectionError from error  # e.g. PostgreSQL restarted since the last batch
            raise
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def _discard(self, *, invalidate: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            if invalidate:
                connection.invalidate()
            else:
                connection.rollback()
                connection.close()

    def close(self) -> None:
        """Give the connection back to the pool (from the writer thread, which owns it)."""
        self._discard(invalidate=False)


class _StaleConnectionError(Exception):
    pass


class AuditWriter:
    """Group commit: one writer thread takes every record waiting in the queue and commits them in one
    transaction; each call awaits its own record's commit, so nothing is answered before it is durable.
    Concurrent calls share a commit instead of contending for the database's write lock."""

    MAX_BATCH = 200

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.Queue[tuple[AuditRecord, asyncio.Future[None], asyncio.AbstractEventLoop] | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def write(self, record: AuditRecord) -> None:
        self._ensure_running()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put((record, done, loop))
        await done

    def _ensure_running(self) -> None:
        # Started on first use and again after close(): an app whose lifespan restarts keeps auditing.
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        sink = _AuditSink(self._engine)
        try:
            self._serve(sink)
        finally:
            sink.close()

    def _serve(self, sink: _AuditSink) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            error: BaseException | None = None
            try:
                sink.write([record for record, _, _ in batch])
            except Exception as failure:
                error = failure
            for _, done, loop in batch:
                try:
                    loop.call_soon_threadsafe(_settle, done, error)
                except RuntimeError:
                    continue  # that call's event loop has closed: nobody is waiting any more


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
